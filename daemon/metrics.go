package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/bfd"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/pim"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector exposes the daemon's state to Prometheus. It reads everything
// at scrape time from the same sources as the local API (BPF maps, the
// protocol state machines), so there is nothing to keep in sync.
type collector struct {
	d *Daemon

	routePackets, routeBytes, frames           *prometheus.Desc
	mldRx, mldTx, mldDrops, mldGroups, mldQ    *prometheus.Desc
	vrrpState, vrrpMaster, vrrpAdverts, vrrpDr *prometheus.Desc
	rbsUp, rbsEntries, rbsBatches, rbsResyncs  *prometheus.Desc
	rbsLag, rbsStrangers                       *prometheus.Desc
	gate                                       *prometheus.Desc
	bfdState, bfdPackets, bfdDrops, bfdDowns   *prometheus.Desc
	bfdLate                                    *prometheus.Desc
	pim                                        pimDescs
}

// pimDescs are the PIM metrics, read from d.pimView() (collect).
type pimDescs struct {
	neighbors, isDR, messages, drops, sendErrors, nbrEvents, drChanges *prometheus.Desc
	jp, jpDrops, asserts, register, registerDrops, routerErrors        *prometheus.Desc
	routes, data, counterPolls                                         *prometheus.Desc
}

func (p pimDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{p.neighbors, p.isDR, p.messages, p.drops, p.sendErrors, p.nbrEvents, p.drChanges,
		p.jp, p.jpDrops, p.asserts, p.register, p.registerDrops, p.routerErrors, p.routes, p.data, p.counterPolls}
}

func newCollector(d *Daemon) *collector {
	n := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("hotcast_"+name, help, labels, prometheus.Labels{"sysname": d.cfg.Sysname})
	}
	return &collector{
		d:            d,
		routePackets: n("route_packets_total", "Packets matched by a fast-path route.", "source", "group", "incoming"),
		routeBytes:   n("route_bytes_total", "Bytes matched by a fast-path route.", "source", "group", "incoming"),
		frames:       n("fastpath_frames_total", "Frames seen by the XDP/devmap programs, by verdict reason.", "reason"),
		gate:         n("interface_gate_forwarding", "1 while an interface's multicast gate forwards, 0 while muted.", "interface"),
		mldRx:        n("mld_messages_received_total", "MLD messages received.", "interface", "type"),
		mldTx:        n("mld_messages_sent_total", "MLD messages sent.", "interface", "type"),
		mldDrops:     n("mld_drops_total", "MLD messages dropped, by reason.", "interface", "reason"),
		mldGroups:    n("mld_groups", "MLD group records.", "interface"),
		mldQ:         n("mld_querier", "1 while this router is the MLD querier on the interface.", "interface"),
		vrrpState:    n("vrrp6_state", "VRRP6 state: 0 Initialize, 1 Backup, 2 Master.", "interface", "vrid"),
		vrrpMaster:   n("vrrp6_became_master_total", "Transitions to Master.", "interface", "vrid"),
		vrrpAdverts:  n("vrrp6_adverts_total", "VRRP6 advertisements by direction.", "interface", "vrid", "direction"),
		vrrpDr:       n("vrrp6_drops_total", "VRRP6 advertisements dropped, by reason.", "interface", "vrid", "reason"),
		rbsUp:        n("rbs_session_up", "1 while the remote backup service session is connected.", "service"),
		rbsStrangers: n("rbs_strangers_rejected_total", "Connections from addresses other than the peer, rejected.", "service"),
		rbsEntries:   n("rbs_entries_total", "MLD entries replicated, by direction.", "profile", "direction"),
		rbsBatches:   n("rbs_batches_total", "Batch backups, by direction.", "profile", "direction"),
		rbsResyncs:   n("rbs_resyncs_total", "Resynchronisations requested (receiver) or served (sender).", "profile", "side"),
		rbsLag:       n("rbs_sync_lag_seconds", "Last measured time from a change to its acknowledgement by the peer.", "profile"),
		bfdState:     n("bfd_session_state", "BFD session state: 0 AdminDown, 1 Down, 2 Init, 3 Up.", "session", "interface"),
		bfdPackets:   n("bfd_packets_total", "BFD control packets by direction.", "session", "direction"),
		bfdDrops:     n("bfd_drops_total", "BFD control packets dropped, by reason.", "session", "reason"),
		bfdDowns:     n("bfd_session_down_total", "BFD session transitions from Up to Down or AdminDown.", "session"),
		bfdLate:      n("bfd_engine_max_lateness_seconds", "Largest lateness of a BFD timer against its deadline."),
		pim: pimDescs{
			neighbors:     n("pim_neighbors", "PIM neighbours on the interface.", "interface"),
			isDR:          n("pim_dr", "1 while this router is the PIM DR of the interface's link.", "interface"),
			messages:      n("pim_messages_total", "PIM messages accepted (received) or sent, by type.", "interface", "type", "direction"),
			drops:         n("pim_drops_total", "PIM packets dropped by the interface, by reason.", "interface", "reason"),
			sendErrors:    n("pim_send_errors_total", "PIM messages the interface failed to send.", "interface"),
			nbrEvents:     n("pim_neighbor_events_total", "PIM neighbour changes: up, down, restart (a new Generation ID).", "interface", "event"),
			drChanges:     n("pim_dr_changes_total", "DR elections that changed the interface's DR.", "interface"),
			jp:            n("pim_joinprune_total", "Join/Prune messages: received (to this router), seen (to another, for suppression and override), sent.", "direction"),
			jpDrops:       n("pim_joinprune_drops_total", "Join/Prunes, group sets or entries ignored, by reason.", "reason"),
			asserts:       n("pim_asserts_total", "Assert messages: received, sent, dropped.", "direction"),
			register:      n("pim_register_total", "Registers and Register-Stops, by kind.", "kind"),
			registerDrops: n("pim_register_drops_total", "Registers and Register-Stops ignored, by reason.", "reason"),
			routerErrors:  n("pim_router_send_errors_total", "Join/Prunes, Asserts, Registers and Register-Stops the router failed to send."),
			routes:        n("pim_routes", "PIM routing entries: star_g (*,G), s_g (S,G).", "kind"),
			data:          n("pim_data_packets_total", "Data packets through the daemon's PIM data path, by event.", "event"),
			counterPolls:  n("pim_counter_polls_total", "Route counter reads for the Keepalive Timer."),
		},
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.routePackets, c.routeBytes, c.frames, c.gate, c.mldRx, c.mldTx, c.mldDrops, c.mldGroups, c.mldQ,
		c.vrrpState, c.vrrpMaster, c.vrrpAdverts, c.vrrpDr, c.rbsUp, c.rbsStrangers, c.rbsEntries, c.rbsBatches, c.rbsResyncs, c.rbsLag,
		c.bfdState, c.bfdPackets, c.bfdDrops, c.bfdDowns, c.bfdLate} {
		ch <- d
	}
	for _, d := range c.pim.all() {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	if rs, err := d.dp.Routes(); err == nil {
		names := d.ifNames()
		for _, r := range rs {
			src := r.Source.String()
			if r.IsStar() {
				src = "*"
			}
			counter(c.routePackets, r.Packets, src, r.Group.String(), ifName(names, r.IIf))
			counter(c.routeBytes, r.Bytes, src, r.Group.String(), ifName(names, r.IIf))
		}
	}
	if reasons, err := d.dp.Reasons(); err == nil {
		for r, v := range reasons {
			counter(c.frames, v, bpf.ReasonName(r))
		}
	}
	type view struct {
		name  string
		index int
		mld   *mld.Interface
		vrrp  []*vrrpGroup
	}
	var ifs []view
	d.mu.RLock()
	for _, ifc := range d.ifaces {
		ifs = append(ifs, view{ifc.name, ifc.index, ifc.mld, ifc.vrrp})
	}
	d.mu.RUnlock()
	for _, ifc := range ifs {
		name := ifc.name
		if e, err := d.dp.Iface(ifc.index); err == nil {
			v := 0.0
			if e.Gate == bpf.GateForward {
				v = 1
			}
			gauge(c.gate, v, name)
		}
		if ifc.mld != nil {
			st := ifc.mld.Status()
			s := st.Stats
			for t, v := range map[string]uint64{"query_v1": s.RxQueriesV1, "query_v2": s.RxQueriesV2, "report_v1": s.RxReportsV1, "done_v1": s.RxDonesV1, "report_v2": s.RxReportsV2} {
				counter(c.mldRx, v, name, t)
			}
			for t, v := range map[string]uint64{"general_query": s.TxGeneralQueries, "group_query": s.TxGroupQueries, "group_source_query": s.TxGroupSourceQueries} {
				counter(c.mldTx, v, name, t)
			}
			for r, v := range s.Drops {
				counter(c.mldDrops, v, name, r.String())
			}
			gauge(c.mldGroups, float64(st.Groups), name)
			q := 0.0
			if st.IsQuerier && st.QuerierAllowed {
				q = 1
			}
			gauge(c.mldQ, q, name)
		}
		for _, g := range ifc.vrrp {
			st := g.router.Status()
			vrid := fmt.Sprint(st.VRID)
			state := map[vrrp6.State]float64{vrrp6.StateInitialize: 0, vrrp6.StateBackup: 1, vrrp6.StateMaster: 2}[st.State]
			gauge(c.vrrpState, state, name, vrid)
			counter(c.vrrpMaster, st.Stats.BecameMaster, name, vrid)
			counter(c.vrrpAdverts, st.Stats.AdvertsSent, name, vrid, "sent")
			counter(c.vrrpAdverts, st.Stats.AdvertsReceived, name, vrid, "received")
			for r, v := range st.Stats.Drops {
				if v != 0 {
					counter(c.vrrpDr, v, name, vrid, vrrp6.DropReason(r).String())
				}
			}
		}
	}
	for _, s := range d.servicesSnapshot() {
		st := s.svc.Status()
		up := 0.0
		if st.State.String() == "connected" {
			up = 1
		}
		gauge(c.rbsUp, up, st.Name)
		counter(c.rbsStrangers, st.Stats.StrangersRejected, st.Name)
	}
	for _, b := range d.backupsSnapshot() {
		st := b.profile.Status()
		counter(c.rbsEntries, st.EntriesSent, b.cfg.Name, "sent")
		counter(c.rbsEntries, st.EntriesReceived, b.cfg.Name, "received")
		counter(c.rbsBatches, st.BatchesSent, b.cfg.Name, "sent")
		counter(c.rbsBatches, st.BatchesReceived, b.cfg.Name, "received")
		counter(c.rbsResyncs, st.ResyncsRequested, b.cfg.Name, "receiver")
		counter(c.rbsResyncs, st.ResyncsServed, b.cfg.Name, "sender")
		gauge(c.rbsLag, st.SyncLag.Seconds(), b.cfg.Name)
	}
	if m := d.bfdView(); m != nil {
		for _, st := range m.Sessions() {
			gauge(c.bfdState, float64(st.State), st.Name, st.Interface)
			counter(c.bfdPackets, st.Stats.Received, st.Name, "received")
			counter(c.bfdPackets, st.Stats.Sent, st.Name, "sent")
			counter(c.bfdDowns, st.Stats.DownCount, st.Name)
			for reason, n := range st.Stats.Drops {
				counter(c.bfdDrops, n, st.Name, bfd.DropReason(reason).String())
			}
		}
		gauge(c.bfdLate, m.Stats().Engine.MaxLateness.Seconds())
	}
	if v, ok := d.pimView(); ok {
		c.pim.collect(ch, v)
	}
}

// collect sends the PIM metrics of v: per interface, then the router's
// and the data path's.
func (p pimDescs) collect(ch chan<- prometheus.Metric, v pimView) {
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	for _, ifc := range v.Ifaces {
		name := ifc.Name
		s := ifc.Ifc.Stats()
		gauge(p.neighbors, float64(ifc.Ifc.NeighborCount()), name)
		dr := 0.0
		if ifc.Ifc.IsDR() {
			dr = 1
		}
		gauge(p.isDR, dr, name)
		for _, t := range pimMessageTypes() {
			counter(p.messages, s.Rx[t], name, t.String(), "received")
			counter(p.messages, s.Tx[t], name, t.String(), "sent")
		}
		for _, r := range pim.DropReasons() {
			counter(p.drops, s.Drops[r], name, r.String())
		}
		counter(p.sendErrors, s.TxErrors, name)
		counter(p.nbrEvents, s.NeighborsUp, name, "up")
		counter(p.nbrEvents, s.NeighborsDown, name, "down")
		counter(p.nbrEvents, s.NeighborRestarts, name, "restart")
		counter(p.drChanges, s.DRChanges, name)
	}
	if v.Router != nil {
		s := v.Router.Stats()
		counter(p.jp, s.JPRx, "received")
		counter(p.jp, s.JPSeen, "seen")
		counter(p.jp, s.JPTx, "sent")
		for _, r := range pimJPDropReasons() {
			counter(p.jpDrops, s.JPDrops[r], r.String())
		}
		counter(p.asserts, s.AssertRx, "received")
		counter(p.asserts, s.AssertTx, "sent")
		counter(p.asserts, s.AssertDrop, "dropped")
		for kind, n := range map[string]uint64{
			"register_sent": s.RegisterTx, "null_register_sent": s.NullRegisterTx, "register_received": s.RegisterRx,
			"decapsulated": s.RegisterDecap, "register_stop_sent": s.RegisterStopTx, "register_stop_received": s.RegisterStopRx,
		} {
			counter(p.register, n, kind)
		}
		for _, r := range pimRegDropReasons() {
			counter(p.registerDrops, s.RegisterDrops[r], r.String())
		}
		counter(p.routerErrors, s.TxErrors)
		starG, sg := pimRouteCounts(v.Router.Routes())
		gauge(p.routes, float64(starG), "star_g")
		gauge(p.routes, float64(sg), "s_g")
	}
	for event, n := range map[string]uint64{
		"received": v.Data.DataRx, "dropped": v.Data.DataDropped,
		"registered": v.Data.RegistersTx, "register_error": v.Data.RegisterErrs,
		"decap_forwarded": v.Data.DecapForward, "decap_error": v.Data.DecapErrs,
	} {
		counter(p.data, n, event)
	}
	counter(p.counterPolls, v.Data.CounterPolls)
}

// listenMetrics listens on api.metrics-listen.
func listenMetrics(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	return l, nil
}

// serveMetrics serves /metrics on l until it is closed.
func (d *Daemon) serveMetrics(l net.Listener, addr string) *httpServer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(d)) // a fresh registry: no name can clash
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	// Metrics are not worth stopping the router for: a failed server
	// is logged and stays down.
	d.group.Go(func() error {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server", "err", err)
		}
		return nil
	})
	d.log.Info("metrics", "listen", l.Addr().String())
	return &httpServer{srv: srv, addr: addr}
}
