package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hotcast/hotcast/daemon/api"
)

func printForwarding(w io.Writer, ft api.ForwardingTable) {
	fmt.Fprintf(w, " IPv6 Multicast Forwarding Table\n Total %d entries\n\n", len(ft.Routes))
	for i, r := range ft.Routes {
		flags := strings.Join(r.Flags, ",")
		if flags == "" {
			flags = "learned"
		}
		fmt.Fprintf(w, " %05d. (%s, %s)\n", i+1, r.Source, r.Group)
		fmt.Fprintf(w, "       Flags: %s\n", flags)
		fmt.Fprintf(w, "       Incoming interface: %s\n", r.Incoming)
		fmt.Fprintf(w, "       List of %d outgoing interfaces:\n", len(r.Outgoing))
		for j, o := range r.Outgoing {
			gate := ft.Gates[o]
			if gate == "" {
				gate = "unknown"
			}
			fmt.Fprintf(w, "         %d: %s (%s)\n", j+1, o, gate)
		}
		fmt.Fprintf(w, "       Matched %d packets (%d bytes)\n", r.Packets, r.Bytes)
	}
	fmt.Fprintf(w, "\n Fast-path frames by reason:\n")
	for _, k := range slices.Sorted(maps.Keys(ft.Reasons)) {
		if ft.Reasons[k] != 0 {
			fmt.Fprintf(w, "   %-20s %d\n", k, ft.Reasons[k])
		}
	}
}

func printMLDGroups(w io.Writer, gs []api.MLDGroup) {
	fmt.Fprintf(w, " MLD group records: %d\n", len(gs))
	last := ""
	for _, g := range gs {
		if g.Interface != last {
			fmt.Fprintf(w, "\n Interface %s:\n", g.Interface)
			fmt.Fprintf(w, "   %-28s %-8s %-4s %-10s %-26s %s\n", "Group", "Mode", "Ver", "Expires", "Last reporter", "Synced")
			last = g.Interface
		}
		exp := "--"
		if g.ExpiresIn > 0 {
			exp = fmt.Sprintf("%.0fs", g.ExpiresIn)
		}
		rep := g.LastReporter
		if rep == "" {
			rep = "--"
		}
		fmt.Fprintf(w, "   %-28s %-8s v%-3d %-10s %-26s %v\n", g.Group, g.FilterMode, g.Version, exp, rep, g.Synced)
		for _, s := range g.Sources {
			sexp := "0 (excluded)"
			if s.ExpiresIn > 0 {
				sexp = fmt.Sprintf("%.0fs", s.ExpiresIn)
			}
			fmt.Fprintf(w, "     source %-40s %s\n", s.Address, sexp)
		}
	}
}

func printMLDInterfaces(w io.Writer, is []api.MLDInterface) {
	for _, i := range is {
		querier := i.Querier
		if i.IsQuerier {
			querier += " (this router)"
		}
		fmt.Fprintf(w, " Interface %s (%s)\n", i.Interface, i.Address)
		fmt.Fprintf(w, "   MLD version: %d\n", i.Version)
		fmt.Fprintf(w, "   Querier: %s\n", querier)
		if !i.QuerierAllowed {
			fmt.Fprintf(w, "   Querier role: suppressed (tracked VRRP6 group is Backup)\n")
		}
		fmt.Fprintf(w, "   Query interval: %.0fs, max response time: %.0fs, robustness: %d, last listener query interval: %.1fs\n",
			i.QueryInterval, i.QueryResponseInterval, i.Robustness, i.LastListenerQueryInterval)
		fmt.Fprintf(w, "   Next general query in: %.1fs, other querier present remaining: %.1fs\n", i.NextGeneralQuery, i.OtherQuerierRemaining)
		fmt.Fprintf(w, "   Groups: %d\n", i.Groups)
		fmt.Fprintf(w, "   Received: %s\n", kv(i.Received))
		fmt.Fprintf(w, "   Sent: %s\n", kv(i.Sent))
		fmt.Fprintf(w, "   Drops: %s\n", kv(i.Drops))
	}
}

func kv(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func printVRRP6(w io.Writer, vs []api.VRRP6) {
	for _, v := range vs {
		fmt.Fprintf(w, " %s | Virtual Router %d\n", v.Interface, v.VRID)
		fmt.Fprintf(w, "   State              : %s\n", v.State)
		fmt.Fprintf(w, "   Virtual IP         : %s\n", strings.Join(v.VirtualIPs, " "))
		fmt.Fprintf(w, "   Virtual MAC        : %s\n", v.VirtualMAC)
		master := v.MasterAddress
		if master == "" {
			master = "--"
		}
		fmt.Fprintf(w, "   Master IP          : %s (priority %d)\n", master, v.MasterPriority)
		fmt.Fprintf(w, "   PriorityRun        : %d\n", v.EffectivePriority)
		fmt.Fprintf(w, "   PriorityConfig     : %d\n", v.ConfiguredPriority)
		pre := "NO"
		if v.Preempt {
			pre = fmt.Sprintf("YES   Delay Time : %.0f s (remaining %.1f s)", v.PreemptDelay, v.PreemptDelayRemaining)
		}
		fmt.Fprintf(w, "   Preempt            : %s\n", pre)
		fmt.Fprintf(w, "   Adver Timer        : %.0f cs (master's %.0f cs)\n", v.AdvertiseInterval*100, v.MasterAdverInterval*100)
		fmt.Fprintf(w, "   Skew / Master Down : %.2f s / %.2f s (remaining %.2f s)\n", v.SkewTime, v.MasterDownInterval, v.MasterDownRemaining)
		if len(v.TrackedDown) > 0 {
			fmt.Fprintf(w, "   Tracked down       : %s\n", strings.Join(v.TrackedDown, " "))
		}
		if v.MulticastTracked {
			fmt.Fprintf(w, "   Multicast track    : yes (last gate write %.0f us after the state change)\n", v.GateWriteDelayUS)
		}
		fmt.Fprintf(w, "   Counters           : %s\n", kv(v.Counters))
		fmt.Fprintf(w, "   Drops              : %s\n", kv(v.Drops))
		for _, t := range v.Transitions {
			fmt.Fprintf(w, "   %s  %s -> %s (%s)\n", t.Time.Format("2006-01-02 15:04:05.000"), t.From, t.To, t.Reason)
		}
	}
}

const rule = "----------------------------------------------------------"

func printRBS(w io.Writer, ss []api.RemoteBackupService) {
	for _, s := range ss {
		fmt.Fprintln(w, rule)
		fmt.Fprintf(w, " Service-Index    : %d\n", s.ServiceIndex)
		fmt.Fprintf(w, " Service-Name     : %s\n", s.ServiceName)
		fmt.Fprintf(w, " TCP-State        : %s\n", s.TCPState)
		fmt.Fprintf(w, " Peer-ip          : %s\n", strings.ToUpper(s.PeerIP))
		fmt.Fprintf(w, " Source-ip        : %s\n", strings.ToUpper(s.SourceIP))
		fmt.Fprintf(w, " TCP-Port         : %d\n", s.TCPPort)
		fmt.Fprintf(w, " Track-BFD        : %s\n", s.TrackBFD)
		fmt.Fprintf(w, " SSL-Policy-Name  : %s\n", s.SSLPolicyName)
		fmt.Fprintf(w, " SSL-State        : %s\n", s.SSLState)
		fmt.Fprintf(w, " Last up time     : %s\n", s.LastUpTime)
		if s.PeerSysname != "" {
			fmt.Fprintf(w, " Peer-Sysname     : %s\n", s.PeerSysname)
		}
		if s.LastDownReason != "" {
			fmt.Fprintf(w, " Last down reason : %s\n", s.LastDownReason)
		}
		fmt.Fprintf(w, " Counters         : %s\n", kv(s.Counters))
		fmt.Fprintln(w, rule)
	}
}

func printRBP(w io.Writer, ps []api.RemoteBackupProfile) {
	for _, p := range ps {
		fmt.Fprintln(w, " "+rule[:47])
		fmt.Fprintf(w, " Profile-Index        : %s\n", p.ProfileIndex)
		fmt.Fprintf(w, " Profile-Name         : %s\n", p.ProfileName)
		fmt.Fprintf(w, " Service              : %s\n", p.Service)
		fmt.Fprintf(w, " Remote-backup-service: %s\n", p.RemoteBackupService)
		fmt.Fprintf(w, " Backup-ID            : %d\n", p.BackupID)
		fmt.Fprintf(w, " track protocol       : %s\n", p.TrackProtocol)
		fmt.Fprintf(w, " VRRP-ID              : %d\n", p.VRRPID)
		fmt.Fprintf(w, " VRRP-Interface       : %s\n", p.VRRPInterface)
		fmt.Fprintf(w, " State                : %s\n", p.State)
		fmt.Fprintf(w, " Peer State           : %s\n", p.PeerState)
		fmt.Fprintf(w, " Interface            :\n")
		for _, i := range p.Interface {
			fmt.Fprintf(w, "                        %s\n", i)
		}
		fmt.Fprintf(w, " Backup mode          : %s\n", p.BackupMode)
		fmt.Fprintf(w, " Slot-Number          : --\n Card-Number          : --\n Port-Number          : --\n")
		fmt.Fprintf(w, " Sync state           : %s\n", p.SyncState)
		if p.Mismatch != "" {
			fmt.Fprintf(w, " Not up because       : %s\n", p.Mismatch)
		}
		fmt.Fprintf(w, " Last sequence        : %d (acked %d), sync lag %.3f ms\n", p.LastSequence, p.AckedSequence, p.SyncLagMS)
		fmt.Fprintf(w, " Counters             : %s\n", kv(p.Counters))
	}
}

// printBFD is VRP's "display bfd session all": one line a session.
func printBFD(w io.Writer, ss []api.BFDSession) {
	fmt.Fprintln(w, rule)
	fmt.Fprintf(w, "%-10s %-10s %-26s %-9s %-16s %s\n", "Local", "Remote", "PeerIpAddr", "State", "Name", "InterfaceName")
	fmt.Fprintln(w, rule)
	up := 0
	for _, s := range ss {
		if s.State == "Up" {
			up++
		}
		fmt.Fprintf(w, "%-10d %-10d %-26s %-9s %-16s %s\n", s.LocalDiscr, s.RemoteDiscr, strings.ToUpper(s.PeerAddress), s.State, s.Name, s.Interface)
	}
	fmt.Fprintln(w, rule)
	fmt.Fprintf(w, "     Total UP/DOWN Session Number : %d/%d\n", up, len(ss)-up)
}

// printBFDVerbose is "display bfd session ... verbose".
func printBFDVerbose(w io.Writer, ss []api.BFDSession) {
	ms := func(s float64) string { return fmt.Sprintf("%.1f ms", s*1e3) }
	for _, s := range ss {
		fmt.Fprintln(w, rule)
		fmt.Fprintf(w, " Session Name              : %s\n", s.Name)
		fmt.Fprintf(w, " Local Discriminator       : %-10d Remote Discriminator : %d\n", s.LocalDiscr, s.RemoteDiscr)
		fmt.Fprintf(w, " Session State             : %-10s Remote State         : %s\n", s.State, s.RemoteState)
		fmt.Fprintf(w, " Bind Interface            : %s\n", s.Interface)
		fmt.Fprintf(w, " Peer / Source Address     : %s / %s\n", strings.ToUpper(s.PeerAddress), strings.ToUpper(s.LocalAddress))
		fmt.Fprintf(w, " Min Tx / Min Rx (local)   : %s / %s\n", ms(s.DesiredMinTx), ms(s.RequiredMinRx))
		fmt.Fprintf(w, " Min Tx / Min Rx (remote)  : %s / %s\n", ms(s.RemoteMinTx), ms(s.RemoteMinRx))
		fmt.Fprintf(w, " Actual Tx Interval        : %s\n", ms(s.TxInterval))
		fmt.Fprintf(w, " Detect Mult (local/remote): %d / %d\n", s.DetectMult, s.RemoteDetectMult)
		fmt.Fprintf(w, " Detection Time            : %s\n", ms(s.DetectTime))
		fmt.Fprintf(w, " Local / Remote Diag       : %s / %s\n", s.LocalDiag, s.RemoteDiag)
		up := "--"
		if s.UpSince != nil {
			up = fmt.Sprintf("%s (%.0f s)", s.UpSince.Format(time.DateTime), s.UptimeSeconds)
		}
		fmt.Fprintf(w, " Up Since                  : %s\n", up)
		tb := "--"
		if len(s.TrackedBy) > 0 {
			tb = strings.Join(s.TrackedBy, ", ")
		}
		fmt.Fprintf(w, " Tracked By                : %s\n", tb)
		fmt.Fprintf(w, " Packets Rx / Tx           : %d / %d\n", s.Counters["received"], s.Counters["sent"])
		fmt.Fprintf(w, " Engine                    : %s, max lateness %s\n", s.EnginePolicy, ms(s.EngineMaxLateness))
		if len(s.Drops) > 0 {
			fmt.Fprintf(w, " Drops                     : %s\n", kv(s.Drops))
		}
	}
	fmt.Fprintln(w, rule)
}

// vrpTime spells seconds as VRP's hh:mm:ss (hours unbounded).
func vrpTime(s float64) string {
	n := int64(s + 0.5)
	return fmt.Sprintf("%02d:%02d:%02d", n/3600, n/60%60, n%60)
}

// addrOr is an address as VRP prints it (upper case), or none.
func addrOr(a, none string) string {
	if a == "" {
		return none
	}
	return strings.ToUpper(a)
}

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// printPIMNeighbors is VRP's "display pim ipv6 neighbor": one line a
// neighbour.
func printPIMNeighbors(w io.Writer, ns []api.PIMNeighbor) {
	fmt.Fprintf(w, " Total Number of Neighbors = %d\n\n", len(ns))
	fmt.Fprintf(w, " %-26s %-16s %-9s %-9s %s\n", "Neighbor", "Interface", "Uptime", "Expires", "Dr-Priority")
	for _, n := range ns {
		exp := vrpTime(n.ExpiresIn)
		if n.NeverExpires {
			exp = "never"
		}
		prio := "-"
		if n.DRPriority != nil {
			prio = fmt.Sprint(*n.DRPriority)
		}
		fmt.Fprintf(w, " %-26s %-16s %-9s %-9s %s\n", addrOr(n.Address, "-"), n.Interface, vrpTime(n.UptimeSeconds), exp, prio)
	}
}

// printPIMNeighborsVerbose is "display pim ipv6 neighbor verbose": a
// neighbour's Hello options.
func printPIMNeighborsVerbose(w io.Writer, ns []api.PIMNeighbor) {
	fmt.Fprintf(w, " Total Number of Neighbors = %d\n", len(ns))
	for _, n := range ns {
		fmt.Fprintf(w, "\n Neighbor: %s\n", addrOr(n.Address, "-"))
		fmt.Fprintf(w, "     Interface: %s\n", n.Interface)
		fmt.Fprintf(w, "     Uptime: %s\n", vrpTime(n.UptimeSeconds))
		if n.NeverExpires {
			fmt.Fprintf(w, "     Expiry time: never\n")
		} else {
			fmt.Fprintf(w, "     Expiry time: %s\n", vrpTime(n.ExpiresIn))
		}
		prio, gen := "-", "-"
		if n.DRPriority != nil {
			prio = fmt.Sprint(*n.DRPriority)
		}
		if n.GenerationID != nil {
			gen = fmt.Sprintf("0X%08X", *n.GenerationID)
		}
		fmt.Fprintf(w, "     DR Priority: %s\n", prio)
		fmt.Fprintf(w, "     DR: %s\n", map[bool]string{true: "Yes", false: "No"}[n.IsDR])
		fmt.Fprintf(w, "     Generation ID: %s\n", gen)
		fmt.Fprintf(w, "     Holdtime: %.0f s\n", n.Holdtime)
		if d := n.LANPruneDelay; d != nil {
			fmt.Fprintf(w, "     LAN delay: %.0f ms\n", d.PropagationDelay*1e3)
			fmt.Fprintf(w, "     Override interval: %.0f ms\n", d.OverrideInterval*1e3)
			fmt.Fprintf(w, "     Neighbor tracking: %s\n", enabled(d.Tracking))
		} else {
			fmt.Fprintf(w, "     LAN delay: -\n     Override interval: -\n     Neighbor tracking: -\n")
		}
		if len(n.SecondaryAddresses) == 0 {
			fmt.Fprintf(w, "     Secondary address list: -\n")
			continue
		}
		fmt.Fprintf(w, "     Secondary address list:\n")
		for _, a := range n.SecondaryAddresses {
			fmt.Fprintf(w, "         %s\n", strings.ToUpper(a))
		}
	}
}

// printPIMInterfaces is VRP's "display pim ipv6 interface".
func printPIMInterfaces(w io.Writer, is []api.PIMInterface) {
	fmt.Fprintf(w, " %-16s %-5s %-6s %-8s %-10s %s\n", "Interface", "State", "NbrCnt", "HelloInt", "DR-Pri", "DR-Address")
	for _, i := range is {
		dr := addrOr(i.DR, "-")
		if i.IsDR {
			dr += " (local)"
		}
		fmt.Fprintf(w, " %-16s %-5s %-6d %-8.0f %-10d %s\n", i.Interface, i.State, i.Neighbors, i.HelloInterval, i.DRPriority, dr)
	}
}

// printPIMInterfacesVerbose is "display pim ipv6 interface verbose".
func printPIMInterfacesVerbose(w io.Writer, is []api.PIMInterface) {
	ms := func(s float64) string { return fmt.Sprintf("%.0f ms", s*1e3) }
	for i, p := range is {
		if i > 0 {
			fmt.Fprintln(w)
		}
		dr := addrOr(p.DR, "-")
		if p.IsDR {
			dr += " (local)"
		}
		negotiated := ""
		if !p.LANDelayEnabled {
			negotiated = " (defaults: not every router sends the LAN Prune Delay option)"
		}
		fmt.Fprintf(w, " Interface: %s, %s\n", p.Interface, addrOr(p.Address, "-"))
		fmt.Fprintf(w, "     PIM version: 2\n     PIM mode: Sparse\n")
		fmt.Fprintf(w, "     PIM state: %s\n", p.State)
		fmt.Fprintf(w, "     PIM DR: %s\n", dr)
		fmt.Fprintf(w, "     PIM DR Priority (configured): %d\n", p.DRPriority)
		fmt.Fprintf(w, "     PIM neighbor count: %d\n", p.Neighbors)
		fmt.Fprintf(w, "     PIM hello interval: %.0f s\n", p.HelloInterval)
		fmt.Fprintf(w, "     PIM hello hold interval: %.0f s\n", p.Holdtime)
		if p.State == "up" {
			fmt.Fprintf(w, "     PIM next hello: %.1f s\n", p.NextHello)
		} else {
			fmt.Fprintf(w, "     PIM next hello: -\n")
		}
		fmt.Fprintf(w, "     PIM LAN delay (negotiated): %s%s\n", ms(p.PropagationDelay), negotiated)
		fmt.Fprintf(w, "     PIM hello override interval (negotiated): %s\n", ms(p.OverrideInterval))
		fmt.Fprintf(w, "     PIM neighbor tracking (negotiated): %s\n", enabled(!p.JoinSuppression))
		fmt.Fprintf(w, "     PIM generation ID: 0X%08X\n", p.GenerationID)
		fmt.Fprintf(w, "     PIM ignore dr-state: %s\n", enabled(p.IgnoreDRState))
		fmt.Fprintf(w, "     PIM ignore assert-state: %s\n", enabled(p.IgnoreAssertState))
		fmt.Fprintf(w, "     Received: %s\n", kv(p.Received))
		fmt.Fprintf(w, "     Sent: %s\n", kv(p.Sent))
		fmt.Fprintf(w, "     Counters: %s\n", kv(p.Counters))
		fmt.Fprintf(w, "     Drops: %s\n", kv(p.Drops))
	}
}

func entries(n int) string {
	if n == 1 {
		return "entry"
	}
	return "entries"
}

// printPIMRoutes is VRP's "display pim ipv6 routing-table".
func printPIMRoutes(w io.Writer, rt api.PIMRoutingTable) {
	fmt.Fprintf(w, " Total %d (*, G) %s; %d (S, G) %s\n", rt.StarGEntries, entries(rt.StarGEntries), rt.SGEntries, entries(rt.SGEntries))
	for _, r := range rt.Routes {
		local := slices.Contains(r.Flags, "LocalRP")
		fmt.Fprintf(w, "\n (%s, %s)\n", addrOr(r.Source, "*"), strings.ToUpper(r.Group))
		if r.RP != "" {
			rp := strings.ToUpper(r.RP)
			if local {
				rp += " (local)"
			}
			fmt.Fprintf(w, "     RP: %s\n", rp)
		}
		flags := strings.Join(r.Flags, " ")
		if flags == "" {
			flags = "-"
		}
		fmt.Fprintf(w, "     Protocol: %s, Flag: %s\n", r.Protocol, flags)
		up := r.UpstreamInterface
		if up == "" {
			up = "NULL"
			if local {
				up = "Register"
			}
		}
		state := "NotJoined"
		if r.Joined {
			state = "Joined"
		}
		fmt.Fprintf(w, "     Upstream interface: %s\n", up)
		fmt.Fprintf(w, "         Upstream neighbor: %s\n", addrOr(r.UpstreamNeighbor, "NULL"))
		fmt.Fprintf(w, "         RPF prime neighbor: %s\n", addrOr(r.UpstreamNeighbor, "NULL"))
		fmt.Fprintf(w, "         Upstream state: %s\n", state)
		fmt.Fprintf(w, "     Downstream interface(s) information:")
		if len(r.Downstreams) == 0 {
			fmt.Fprintf(w, " None\n")
			continue
		}
		fmt.Fprintf(w, "\n     Total number of downstreams: %d\n", len(r.Downstreams))
		for j, d := range r.Downstreams {
			proto, exp := "mld", "-"
			if d.Joined {
				proto, exp = "pim-sm", vrpTime(d.ExpiresIn)
				if d.NeverExpires {
					exp = "never"
				}
				if d.Local {
					proto = "pim-sm/mld"
				}
			}
			fmt.Fprintf(w, "         %d: %s\n", j+1, d.Interface)
			fmt.Fprintf(w, "             Protocol: %s, Expires: %s\n", proto, exp)
		}
	}
}

// printPIMStatistics is "display pim routing-table statistics": the
// totals, the RPs and the router's counters.
func printPIMStatistics(w io.Writer, rt api.PIMRoutingTable) {
	fmt.Fprintf(w, " Total %d (*, G) %s; %d (S, G) %s\n", rt.StarGEntries, entries(rt.StarGEntries), rt.SGEntries, entries(rt.SGEntries))
	for _, rp := range rt.RPs {
		fmt.Fprintf(w, " Static RP: %s, group range %s\n", strings.ToUpper(rp.Address), strings.ToUpper(rp.GroupRange))
	}
	if len(rt.RPs) == 0 {
		fmt.Fprintf(w, " Static RP: none (SSM only)\n")
	}
	fmt.Fprintf(w, " SPT switch: %s\n", rt.SPTSwitch)
	s := rt.Statistics
	fmt.Fprintf(w, " Join/Prune       : %s\n", kv(s.JoinPrune))
	fmt.Fprintf(w, " Join/Prune drops : %s\n", kv(s.JoinPruneDrops))
	fmt.Fprintf(w, " Assert           : %s\n", kv(s.Assert))
	fmt.Fprintf(w, " Register         : %s\n", kv(s.Register))
	fmt.Fprintf(w, " Register drops   : %s\n", kv(s.RegisterDrops))
	fmt.Fprintf(w, " Send errors      : %d\n", s.SendErrors)
	fmt.Fprintf(w, " Data path        : %s\n", kv(s.Data))
}
