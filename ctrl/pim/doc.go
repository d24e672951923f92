// Package pim is hotcast's PIM-SM for IPv6 (RFC 7761): the PIMv2 message
// codec, the per-interface neighbour state (Hellos, neighbour liveness, DR
// election, LAN Prune Delay), and the join/prune and assert state
// machines with the routes they derive.
//
// hotcast's PIM does not use kernel multicast routing (no MRT6_INIT, no
// pim6reg interface): its messages travel over raw IPv6 sockets of protocol
// 103 and its forwarding state goes into the same BPF maps as MLD's (the
// daemon turns [Route] values into bpf routes through ctrl/mroute).
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
// Routing state: a [Router] holds, across the interfaces added to it
// ([Router.AddInterface], with [IfaceOptions] IgnoreDRState and
// IgnoreAssertState), the §4.5 machines: downstream (*,G), (S,G) and
// (S,G,rpt) per interface; upstream (*,G) and (S,G) with the Join Timer
// (t_periodic, join suppression and prune override on a LAN, RPF' and
// GenID changes); upstream (S,G,rpt) prunes carried with the (*,G) join.
// The §4.6 assert machines elect one forwarder per LAN. Its inputs are the
// Interface's callbacks ([Router.HandleEvent], [Router.HandleMessage]),
// MLD's listeners ([Router.SetLocalMembership], the pim_include and
// pim_exclude inputs), route changes ([Router.RPFChanged]) and the data
// path hooks ([Router.DataArrived], §4.2's data arrival: the Keepalive
// Timer, Update_SPTbit, the SPT switch and asserts; [Router.SetSourceActive]
// holds the KAT running; [Router.SetSPTBit]; [Router.DataOnOIF], what
// triggers an Assert). Its outputs are Join/Prune messages (one batch per
// upstream neighbour, packed within the MTU) and Asserts through
// [Interface.Send], unicast Registers and Register-Stops through
// RouterConfig.Unicast ([UnicastSender]), and the routes: [Router.Routes]
// and RouterConfig.OnRoutes ([RouteUpdate]), delivered without the
// Router's lock held.
//
// Registers (§4.4): the DR of a directly connected source (or a router
// with IgnoreDRState on its interface) runs the §4.4.1 Register machine
// per (S,G): [RegisterState] Join (route flag FlagRegister: the data path
// encapsulates each packet with [Router.BuildRegister] or
// [Router.SendRegister], [Router.ShouldRegister] tells), Prune after a
// Register-Stop ([Router.HandleRegisterStop]), Join-Pending while a
// Null-Register probes the RP, Register_Suppression_Time ± 50 % less
// Register_Probe_Time later. At the RP ([Router.HandleRegister]: outer
// destination one of RouterConfig.Addresses, AcceptRegister and
// AcceptRegisterSources, the inner packet checked), the inner packet goes
// out on the RP tree ([RegisterData], RouterConfig.OnRegisterData), the
// KAT joins the SPT towards S, and a Register-Stop goes back once the SPT
// bit is set or nobody wants S (then the KAT is RP_Keepalive_Period). The
// router is the RP of G when RP(G) is one of its Addresses: no upstream
// towards the RP ((*,G) RPFIface 0, route flag FlagLocalRP), and a
// directly connected source is forwarded natively with its interface as
// the (S,G) incoming interface, without registering. Last-hop routers
// switch to the SPT on the first packet down the RP tree unless
// RouterConfig.SPTSwitch is SPTNever.
//
// RP and RPF: an [RPSet] maps groups to static RPs and holds the SSM range
// (ff3x::/32 by default), whose groups get (S,G) state only. [RPF] answers
// RPF_interface and MRIB.next_hop; [NetlinkRPF] asks the Linux FIB
// (RTM_GETROUTE) and watches its changes, [StaticRPF] is a table.
// RPF' is the next hop when it is a PIM neighbour on that interface (by
// primary or secondary address), the address itself when on-link, or the
// assert winner there (§4.1.6).
//
// Transport (Linux): [Conn] is a raw IPv6 socket of protocol 103 bound to
// one interface and joined to ff02::d; it implements [Sender] and reads
// [Packet] values for [Interface.HandlePacket]. [UnicastConn] is the
// host's raw socket of protocol 103 bound to no interface, for the routed
// Registers, Null-Registers and Register-Stops: it implements
// [UnicastSender] (the kernel fragments a Register larger than the path
// MTU) and reads [UnicastPacket] values, skipping the multicast messages
// that are the Conns'. [DataConn] is an AF_PACKET socket per interface
// with a classic BPF filter: it reads the routable multicast data that the
// XDP fast path passes to the stack ([DataPacket], for
// [Router.DataArrived] and Register encapsulation) and writes IPv6
// packets out of the interface (the RP's decapsulated Register data).
//
// Not here yet: (*,*,RP) and group-range joins, BSR, the RP's
// PMBR-specific behaviour beyond PMBR(S,G) (Border bit), Register
// rate limiting (the daemon's), and the daemon wiring.
package pim
