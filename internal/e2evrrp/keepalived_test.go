package e2evrrp

import (
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
)

const kaAdvInt = 100 * time.Millisecond

// TestKeepalivedBackupToHotcast: keepalived (priority 100) is Master
// alone; hotcast (priority 200, no preempt delay) starts, preempts it
// (RFC 9568 §6.4.2) and keepalived goes Backup and stays there. The host
// resolves both virtual addresses to the virtual MAC. When hotcast's LAN
// link goes down keepalived takes over within its Master_Down_Interval;
// when it returns hotcast preempts again.
func TestKeepalivedBackupToHotcast(t *testing.T) {
	l := newLab(t, []routerSpec{{name: "A", prio: 200, advInt: kaAdvInt, addr: "2001:db8::1"}}, true)
	ka := startKeepalived(t, l.kaNS, 100, "0.1", "")
	waitKA(t, ka, "MASTER", 5*time.Second)

	a := l.start(0)
	waitState(t, a, "Master", 5*time.Second)
	waitKA(t, ka, "BACKUP", 2*time.Second)
	a.wantGate(t, "forward")

	// Stable: nobody flaps for a second.
	masters, trans := ka.countTo("MASTER"), len(a.mustStatus(t).Transitions)
	time.Sleep(time.Second)
	st := a.mustStatus(t)
	if n := ka.countTo("MASTER"); n != masters || len(st.Transitions) != trans || st.State != "Master" {
		t.Fatalf("flapping: keepalived MASTER %d -> %d times, hotcast transitions %d -> %d (%s)", masters, n, trans, len(st.Transitions), st.State)
	}
	// hotcast heard keepalived's adverts while Backup: same address list,
	// nothing dropped.
	if st.Counters["adverts_received"] == 0 || st.Counters["address_mismatch"] != 0 || len(st.Drops) != 0 {
		t.Errorf("hotcast counters %v drops %v: want keepalived's adverts received, no mismatch, no drops", st.Counters, st.Drops)
	}
	if tr := st.Transitions[len(st.Transitions)-1]; tr.Reason != "Preempt" {
		t.Errorf("hotcast became Master by %s, want Preempt", tr.Reason)
	}
	// keepalived accepted hotcast's adverts (checksum, address list,
	// hop limit) and complained about nothing.
	ka.wantLogClean(t)
	if !strings.Contains(ka.log.String(), "received advert from "+st.LinkLocal+" with higher priority 200") {
		t.Errorf("keepalived did not log hotcast's advert from %s", st.LinkLocal)
	}

	// The host resolves each virtual address to the virtual MAC.
	for _, vip := range []string{vipLL, vipGlobal} {
		if mac := l.ndisc(t, vip); mac != vmac {
			t.Errorf("ndisc6 %s: %s, want %s", vip, mac, vmac)
		}
		l.ping(t, vip)
	}

	// Master loss: hotcast's LAN link goes down.
	t0 := setLink(t, a.lan, false)
	waitKA(t, ka, "MASTER", 3*time.Second)
	t1, _ := ka.lastTo("MASTER")
	took := t1.Sub(t0)
	mdi := kaMasterDown(100, kaAdvInt)
	t.Logf("keepalived took over %s after hotcast's link went down (Master_Down_Interval %s)", took, mdi)
	if took > mdi+50*time.Millisecond || took < mdi-kaAdvInt-20*time.Millisecond {
		t.Errorf("keepalived took over after %s, want within (%s, %s]", took, mdi-kaAdvInt, mdi+50*time.Millisecond)
	}
	if s := a.state(); s != "Initialize" {
		t.Errorf("hotcast state %s with its link down, want Initialize", s)
	}
	a.wantGate(t, "muted")
	// The host follows keepalived's unsolicited NA (keepalived has no
	// virtual MAC without use_vmac: its interface MAC).
	l.ping(t, vipGlobal)
	if mac, e := l.neighMAC(t, vipGlobal); mac != l.kaLink.MAC.String() {
		t.Errorf("host neighbor entry after keepalived took over: %s, want keepalived's %s", e, l.kaLink.MAC)
	}

	// hotcast returns and preempts keepalived again.
	setLink(t, a.lan, true)
	waitState(t, a, "Master", linkUpWait+time.Second)
	waitKA(t, ka, "BACKUP", 2*time.Second)
	a.wantGate(t, "forward")
	l.pingUntil(t, vipGlobal)
	if mac, e := l.neighMAC(t, vipGlobal); mac != vmac {
		t.Errorf("host neighbor entry after hotcast took back: %s, want %s", e, vmac)
	}
}

// TestKeepalivedMasterOverHotcast: keepalived (priority 200) preempts
// hotcast (priority 100), whose gate is muted while Backup. keepalived
// crashes (SIGKILL, no priority 0 advert) and its machine leaves the LAN:
// hotcast takes over within its Master_Down_Interval (3 x 100 ms + skew
// 60 ms), opens its gate, and the host, which had keepalived's MAC for
// the virtual address, moves to the virtual MAC from hotcast's unsolicited
// NA alone (its cache is not flushed).
func TestKeepalivedMasterOverHotcast(t *testing.T) {
	l := newLab(t, []routerSpec{{name: "A", prio: 100, advInt: kaAdvInt, addr: "2001:db8::1"}}, true)
	a := l.start(0)
	waitState(t, a, "Master", 5*time.Second)
	a.wantGate(t, "forward")

	ka := startKeepalived(t, l.kaNS, 200, "0.1", "")
	waitKA(t, ka, "MASTER", 5*time.Second)
	waitState(t, a, "Backup", 2*time.Second)
	st := a.mustStatus(t)
	if st.MasterPriority != 200 || st.Transitions[len(st.Transitions)-1].Reason != "HigherPriorityAdvert" {
		t.Errorf("hotcast Backup: master priority %d, last transition %+v", st.MasterPriority, st.Transitions[len(st.Transitions)-1])
	}
	a.wantGate(t, "muted")
	time.Sleep(500 * time.Millisecond)
	if n := ka.countTo("MASTER"); n != 1 || a.state() != "Backup" {
		t.Fatalf("flapping: keepalived entered MASTER %d times, hotcast %s", n, a.state())
	}

	l.ping(t, vipGlobal)
	kaMAC := l.kaLink.MAC.String()
	if mac, e := l.neighMAC(t, vipGlobal); mac != kaMAC {
		t.Fatalf("host neighbor entry with keepalived Master: %s, want %s", e, kaMAC)
	}

	// Crash: the VRRP process dies, then the machine's link goes.
	t0 := ka.killVRRP()
	setLink(t, l.kaLink, false)
	waitState(t, a, "Master", 2*time.Second)
	st = a.mustStatus(t)
	t1, _ := labtest.LastTransitionTo(st, "Master")
	took := t1.Sub(t0)
	mdi := labtest.MasterDownInterval(st)
	t.Logf("hotcast took over %s after keepalived was killed (Master_Down_Interval %s)", took, mdi)
	if want := 3*kaAdvInt + 60*time.Millisecond; mdi != want {
		t.Errorf("Master_Down_Interval %s, want %s", mdi, want)
	}
	if took > mdi+takeoverMargin || took < mdi-kaAdvInt-5*time.Millisecond {
		t.Errorf("hotcast took over after %s, want within [%s, %s]", took, mdi-kaAdvInt, mdi+takeoverMargin)
	}
	a.wantGate(t, "forward")
	// Only the unsolicited NA told the host.
	l.pingUntil(t, vipGlobal)
	if mac, e := l.neighMAC(t, vipGlobal); mac != vmac {
		t.Errorf("host neighbor entry after hotcast took over: %s, want %s", e, vmac)
	}
}

// TestKeepalivedPreemptDelay: hotcast (priority 200, preempt-delay 2s)
// starts while keepalived (priority 100) is Master: it stays Backup with
// the gate muted for the delay, then takes over.
func TestKeepalivedPreemptDelay(t *testing.T) {
	const delay = 2 * time.Second
	l := newLab(t, []routerSpec{{name: "A", prio: 200, preemptDelay: delay, advInt: kaAdvInt, addr: "2001:db8::1"}}, true)
	ka := startKeepalived(t, l.kaNS, 100, "0.1", "")
	waitKA(t, ka, "MASTER", 5*time.Second)

	a := l.start(0)
	waitState(t, a, "Backup", 2*time.Second)
	st := a.mustStatus(t)
	started, ok := labtest.LastTransitionTo(st, "Backup")
	if !ok {
		t.Fatalf("no transition to Backup: %+v", st.Transitions)
	}
	// Halfway through the delay: still Backup, gate muted, keepalived Master.
	time.Sleep(time.Until(started.Add(delay / 2)))
	st = a.mustStatus(t)
	if st.State != "Backup" || ka.state() != "MASTER" {
		t.Fatalf("during the preempt delay: hotcast %s, keepalived %s", st.State, ka.state())
	}
	if st.PreemptDelayRemaining <= 0 || st.PreemptDelayRemaining > delay.Seconds() {
		t.Errorf("preempt delay remaining %.3fs", st.PreemptDelayRemaining)
	}
	a.wantGate(t, "muted")

	waitState(t, a, "Master", delay+2*time.Second)
	st = a.mustStatus(t)
	t1, _ := labtest.LastTransitionTo(st, "Master")
	waited := t1.Sub(started)
	t.Logf("hotcast took over %s after starting (preempt delay %s)", waited, delay)
	if waited < delay || waited > delay+200*time.Millisecond {
		t.Errorf("hotcast took over after %s, want the %s preempt delay", waited, delay)
	}
	if r := st.Transitions[len(st.Transitions)-1].Reason; r != "PreemptDelayExpired" {
		t.Errorf("reason %s, want PreemptDelayExpired", r)
	}
	waitKA(t, ka, "BACKUP", 2*time.Second)
	a.wantGate(t, "forward")
}
