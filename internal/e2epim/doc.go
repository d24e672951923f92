// Package e2epim holds privileged end-to-end tests of hotcastd's PIM-SM
// (RFC 7761) in network namespaces, on the reference topology of the "MLD
// dual-device hot backup in a VRRP6 scenario": DeviceD the RP (its
// loopback) and the first-hop router of the source's LAN, DeviceA and
// DeviceB a VRRP6 pair on the receivers' LAN with RBS hot backup, every
// interface `pim: sm`, no static multicast route anywhere (unicast static
// routes stand in for the reference's IS-IS).
//
// The package has no non-test code besides this comment; run it as root:
//
//	go test -count=1 ./internal/e2epim/
package e2epim
