package pairing

import "time"

func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }

func identityG1() *G1 { return G1Generator().Sub(G1Generator()) }
