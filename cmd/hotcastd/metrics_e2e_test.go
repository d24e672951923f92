package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hotcast/hotcast/internal/labtest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsScrape runs hotcastd with api.metrics-listen, forwards a
// stream and scrapes /metrics from inside the router's namespace: the text
// parses as Prometheus exposition format and carries the route and reason
// counters with the right values.
func TestMetricsScrape(t *testing.T) {
	f := newFastpathYAML(t, strings.Replace(fastpathYAML, `api: {socket: "%SOCKET%"}`, `api: {socket: "%SOCKET%", metrics-listen: "[::1]:9469"}`, 1))
	st := labtest.StartStream(t, f.s0, srcS, []netip.Addr{grpG}, 200)
	time.Sleep(500 * time.Millisecond)
	n := st.Stop()
	labtest.Eventually(t, 3*time.Second, "frames at receiver 1", func() bool { return f.counts(t, grpG)[0] == n })

	// The HTTP client dials on goroutines of its own: dial inside the
	// router's namespace first and hand it the connection.
	var conn net.Conn
	f.rtr.Do(t, func() error {
		var err error
		conn, err = net.Dial("tcp", "[::1]:9469")
		return err
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}}
	resp, err := hc.Get("http://[::1]:9469/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		fam, ok := fams[name]
		if !ok {
			return 0, false
		}
	next:
		for _, m := range fam.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
		return 0, false
	}
	if v, ok := value("hotcast_route_packets_total", map[string]string{"source": srcS.String(), "group": grpG.String(), "incoming": "ge3", "sysname": "E2E"}); !ok || v != float64(n) {
		t.Errorf("hotcast_route_packets_total = %v (%v), want %d", v, ok, n)
	}
	if v, ok := value("hotcast_fastpath_frames_total", map[string]string{"reason": "forwarded"}); !ok || v != float64(n) {
		t.Errorf("forwarded frames = %v (%v), want %d", v, ok, n)
	}
	if v, ok := value("hotcast_interface_gate_forwarding", map[string]string{"interface": "ge1"}); !ok || v != 1 {
		t.Errorf("gate of ge1 = %v (%v), want 1", v, ok)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "hotcast_") {
			t.Errorf("metric %s outside the hotcast_ namespace", name)
		}
	}
}
