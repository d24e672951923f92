// Package vrrp6 implements VRRP version 3 for IPv6 (RFC 9568, which
// obsoletes RFC 5798): the advertisement codec, the Ethernet/IPv6/ICMPv6
// frames sent around it (advertisements and unsolicited Neighbor
// Advertisements from the virtual MAC), the per-(interface, VRID) state
// machine of RFC 9568 §6.4 and, on Linux, the sockets that carry it.
//
// hotcast does the virtual MAC in a BPF fast path instead of a macvlan
// device: the daemon implements [Actions] by programming BPF maps on each
// state transition, and the [Sender] puts whole Ethernet frames on the wire
// (AF_PACKET) so that advertisements and Neighbor Advertisements leave with
// the virtual MAC 00:00:5e:00:02:{VRID} as Ethernet source.
//
// RFC 9568 renamed the Master state "Active"; this package keeps the RFC
// 5798 names (Master, Master_Adver_Interval, Master_Down_Timer) that
// operators and vendor CLIs still use.
package vrrp6
