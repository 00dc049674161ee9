package pairing

import "time"

func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }
