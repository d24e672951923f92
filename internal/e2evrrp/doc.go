// Package e2evrrp holds privileged end-to-end tests of hotcastd's VRRP6
// (VRRPv3 for IPv6, RFC 9568) in network namespaces:
//
//   - interop with keepalived (vrrp_version 3, native_ipv6) in both roles,
//     takeover within Master_Down_Interval (RFC 9568 §6.1, §6.4.2) and the
//     preempt delay;
//   - a LAN host resolving the virtual addresses to the virtual MAC
//     (RFC 9568 §7.3) and reaching them across a failover, learning only
//     from the new Master's unsolicited Neighbor Advertisement (§6.4.2);
//   - two hotcast routers: crashes, link flaps, the multicast gate of
//     multicast-track-vrrp6 following the state, the dual-Master overlap;
//   - malformed adverts (RFC 9568 §7.1) dropped and counted by reason;
//   - the failover benchmark (TestBenchFailover, in bench_test.go: built
//     only with -tags hcbench and run only with HC_BENCH=1;
//     scripts/bench-failover runs it and writes bench/failover.md).
//
// The package has no non-test code besides this comment; run it as root:
//
//	go test -count=1 ./internal/e2evrrp/
package e2evrrp
