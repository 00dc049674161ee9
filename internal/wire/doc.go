// Package wire holds the formats that polyroot's parties exchange: the DTA's and the
// auth server's request and response bodies, the HPKE sealing of every share, the
// issuance log's entries and the DTAs' signed promises. It depends on no service, so
// the client library links only what it speaks.
package wire
