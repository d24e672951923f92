// Package pim is the foundation of hotcast's PIM-SM for IPv6 (RFC 7761):
// the PIMv2 message codec and the per-interface neighbour state (Hellos,
// neighbour liveness, DR election, LAN Prune Delay).
//
// hotcast's PIM does not use kernel multicast routing (no MRT6_INIT, no
// pim6reg interface): its messages travel over raw IPv6 sockets of protocol
// 103 and its forwarding state will go into the same BPF maps as MLD's.
//
// Codec: every byte slice starts at the PIM header (version, type,
// reserved, checksum); the IPv6 header is the transport's business, except
// for the pseudo-header that the checksum covers (RFC 7761 §4.9). [Marshal]
// computes the checksum, [Parse] decodes without checking it and [Verify]
// checks it (for Register, over the first 8 octets only, §4.9.3).
//
// Neighbours: an [Interface] sends Hellos through a [Sender], keeps the
// neighbour table from received Hellos, elects the DR (§4.3.2) and computes
// the LAN Prune Delay values (§4.3.3). It takes a clock.Clock so that
// tests run it on a fake clock, and reports neighbour and DR changes
// ([Event]) and the messages it does not consume itself ([Received]).
//
// Transport (Linux): [Conn] is a raw IPv6 socket of protocol 103 bound to
// one interface and joined to ff02::d; it implements [Sender] and reads
// [Packet] values for [Interface.HandlePacket].
//
// Not here yet: the join/prune state machines of §4.5, RPF, the RP and
// DR register machinery, asserts, and the daemon wiring.
package pim
