package e2evrrp

import (
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/hotcast/hotcast/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// TestBFDTakeover runs two hotcast routers with the reference's 1 s
// adverts (Master_Down_Interval about 3.5 s) and two BFD sessions between
// them (10 ms x 3): "lan" on the LAN, tracked by the VRRP6 group in peer
// mode, and "rbs" on the other link, tracked by the remote backup
// service. It checks the split-brain rule and the takeover:
//
//   - the RBS link's BFD fails alone (its packets dropped at the switch;
//     the LAN and the Master's adverts fine): nothing moves, and display
//     remote-backup-service names the session;
//   - the LAN's BFD fails alone while the Master lives: the Backup may
//     take over on the BFD event (a silent peer cannot be told from a
//     lost BFD path), but the Master's next advert ends it: two Masters
//     for at most one advert interval plus Skew_Time (docs/bfd.md);
//   - the Master's daemon is killed (adverts and BFD stop together): the
//     Backup becomes Master on the BFD event, long before
//     Master_Down_Interval, and opens its gate.
func TestBFDTakeover(t *testing.T) {
	netnstest.RequireRoot(t)
	specs := pairSpecs(0, time.Second)
	for i := range specs {
		specs[i].bfd = 10 * time.Millisecond
	}
	l := newLab(t, specs, false)
	a := l.start(0)
	waitState(t, a, "Master", 6*time.Second)
	b := l.start(1)
	waitState(t, b, "Backup", 3*time.Second)
	bothUp := func(name string) func() bool {
		return func() bool { return a.bfdState(name) == "Up" && b.bfdState(name) == "Up" }
	}
	labtest.Eventually(t, 10*time.Second, "both BFD sessions Up on both routers", func() bool { return bothUp("lan")() && bothUp("rbs")() })
	b.wantGate(t, "muted")
	var svcs []api.RemoteBackupService
	if err := b.get(api.PathRBS, &svcs); err != nil || len(svcs) != 1 || svcs[0].TrackBFD != "rbs" {
		t.Fatalf("display remote-backup-service: %+v %v, want Track-BFD rbs", svcs, err)
	}

	// 1. The RBS link's BFD fails alone.
	became := b.mustStatus(t).Counters["became_master"]
	drop := dropBFD(t, l.upsw, "p-"+specs[0].name)
	labtest.Eventually(t, 3*time.Second, "B's rbs session Down", func() bool { return b.bfdState("rbs") == "Down" })
	time.Sleep(1500 * time.Millisecond) // more than an advert interval
	if st := b.mustStatus(t); st.State != "Backup" || st.Counters["became_master"] != became || a.state() != "Master" {
		t.Fatalf("the RBS link's BFD failure moved VRRP6: A %s, B %s (became Master %d -> %d)", a.state(), st.State, became, st.Counters["became_master"])
	}
	b.wantGate(t, "muted")
	drop.Close()
	labtest.Eventually(t, 5*time.Second, "rbs Up again", bothUp("rbs"))

	// 2. The LAN's BFD fails alone: at most one advert interval of two
	// Masters.
	drop = dropBFD(t, l.lan, "p-"+specs[0].name)
	labtest.Eventually(t, 3*time.Second, "B's lan session Down", func() bool { return b.bfdState("lan") == "Down" })
	time.Sleep(1500 * time.Millisecond)
	if a.state() != "Master" || b.state() != "Backup" {
		t.Fatalf("after a LAN BFD loss with A's adverts arriving: A %s, B %s", a.state(), b.state())
	}
	st := b.mustStatus(t)
	for i, tr := range st.Transitions {
		if tr.To == "Master" && i+1 < len(st.Transitions) {
			if d := st.Transitions[i+1].Time.Sub(tr.Time); d > time.Second+time.Duration(st.SkewTime*float64(time.Second))+100*time.Millisecond {
				t.Fatalf("B stayed Master %s after a BFD-only loss, more than an advert interval", d)
			}
		}
	}
	drop.Close()
	labtest.Eventually(t, 5*time.Second, "lan Up again", bothUp("lan"))

	// 3. A dies: adverts and BFD stop together.
	t0 := time.Now()
	a.d.Kill()
	waitState(t, b, "Master", 4*time.Second)
	st = b.mustStatus(t)
	tm, _ := labtest.LastTransitionTo(st, "Master")
	last := st.Transitions[len(st.Transitions)-1]
	mdi := labtest.MasterDownInterval(st)
	t.Logf("B Master %s after the kill (reason %s; Master_Down_Interval %s)", tm.Sub(t0).Round(time.Millisecond), last.Reason, mdi)
	if last.Reason != "BFDPeerDown" {
		t.Fatalf("B became Master by %s, want BFDPeerDown", last.Reason)
	}
	if tm.Sub(t0) >= mdi {
		t.Fatalf("B took over after %s, not before Master_Down_Interval %s", tm.Sub(t0), mdi)
	}
	b.wantGate(t, "forward")
}

// dropBFD drops, at the ingress of a switch port, the BFD control packets
// (IPv6, UDP destination port 3784, no extension header) that arrive
// there: a tcx program, since this kernel has neither flower nor gact.
func dropBFD(t *testing.T, ns *netnstest.NS, port string) link.Link {
	t.Helper()
	const (
		ethLen  = 14
		udpDst  = ethLen + 40 + 2
		tcOK    = 0
		tcShot  = 2
		bfdPort = 3784
	)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: asm.Instructions{
			// r2 = data, r3 = data_end
			asm.LoadMem(asm.R2, asm.R1, 76, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, 80, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, udpDst+2),
			asm.JGT.Reg(asm.R4, asm.R3, "pass"),
			asm.LoadMem(asm.R5, asm.R2, 12, asm.Half), // ethertype, network order
			asm.JNE.Imm(asm.R5, 0xdd86, "pass"),
			asm.LoadMem(asm.R5, asm.R2, ethLen+6, asm.Byte), // next header
			asm.JNE.Imm(asm.R5, 17, "pass"),
			asm.LoadMem(asm.R5, asm.R2, udpDst, asm.Half),
			asm.JNE.Imm(asm.R5, int32(bfdPort>>8|(bfdPort&0xff)<<8), "pass"),
			asm.Mov.Imm(asm.R0, tcShot),
			asm.Return(),
			asm.Mov.Imm(asm.R0, tcOK).WithSymbol("pass"),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("bfd drop program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	var l link.Link
	ns.Do(t, func() error {
		nl, err := netlink.LinkByName(port)
		if err != nil {
			return err
		}
		l, err = link.AttachTCX(link.TCXOptions{Interface: nl.Attrs().Index, Program: prog, Attach: ebpf.AttachTCXIngress})
		return err
	})
	t.Cleanup(func() { l.Close() })
	return l
}
