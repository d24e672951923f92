package mld

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

// BenchmarkReportProcessing measures MLDv2 report processing on one core
// (run with -cpu 1): steady-state refreshes (IS_EX({}) current-state
// records, RFC 3810 §7.4.1) of every group of an interface holding 10k
// and 100k groups, with checksum verification, the real clock (one timer
// per group) and a no-op OnChange. Custom metrics: records/s and the heap
// bytes each group's state costs (runtime.MemStats around learning them).
func BenchmarkReportProcessing(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) { benchReports(b, n) })
	}
}

func benchReports(b *testing.B, groups int) {
	const perReport = 64 // records per report: 8 + 64*20 octets, within a 1500 MTU
	host := netip.MustParseAddr("fe80::99")
	var pkts []Packet
	for first := 0; first < groups; first += perReport {
		var recs []Record
		for k := first; k < min(first+perReport, groups); k++ {
			g := netip.AddrFrom16([16]byte{0xff, 0x1e, 12: byte(k >> 24), 13: byte(k >> 16), 14: byte(k >> 8), 15: byte(k)})
			recs = append(recs, Record{Type: ModeIsExclude, Group: g})
		}
		icmp, err := Marshal(&V2Report{Records: recs}, host, AllMLDv2Route)
		if err != nil {
			b.Fatal(err)
		}
		pkts = append(pkts, Packet{Src: host, Dst: AllMLDv2Route, HopLimit: 1, RouterAlert: true, Payload: icmp})
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cfg := DefaultConfig("bench0", llB)
	cfg.MaxGroups = -1
	cfg.OnChange = func(GroupState) {}
	ifc, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ifc.Start()
	defer ifc.Stop()
	for _, p := range pkts {
		ifc.HandlePacket(p)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := ifc.Status(); st.Groups != groups || len(st.Stats.Drops) != 0 {
		b.Fatalf("learned %d groups, drops %v; want %d, none", st.Groups, st.Stats.Drops, groups)
	}
	perGroup := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(groups)

	b.ResetTimer()
	records := 0
	for i := 0; i < b.N; i++ {
		p := pkts[i%len(pkts)]
		ifc.HandlePacket(p)
		records += int(p.Payload[7]) | int(p.Payload[6])<<8
	}
	b.StopTimer()
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(perGroup, "B/group")
	runtime.KeepAlive(ifc)
}
