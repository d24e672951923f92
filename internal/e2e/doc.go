// Package e2e holds privileged end-to-end tests of hotcastd in network
// namespaces: MLD (RFC 3810) learned from real Linux host stacks driving
// the XDP fast path, leave and expiry timing, querier election, the MLD
// proxy upstream (RFC 4605) and hostile input. The package has no
// non-test code besides this comment; run it as root:
//
//	go test -count=1 ./internal/e2e/
package e2e
