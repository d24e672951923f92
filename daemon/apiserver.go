package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hotcast/hotcast/bpf"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/api"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/sync/rbs"
)

// httpServer is one of the daemon's HTTP servers, the API or metrics; a
// reload replaces it when its address changes.
type httpServer struct {
	srv  *http.Server
	addr string // unix socket path or host:port
	path string // the unix socket to remove on close, if any
}

func (s *httpServer) close() {
	s.srv.Close()
	if s.path != "" {
		_ = os.Remove(s.path)
	}
}

// listenAPI listens on the API's unix socket (0600).
func listenAPI(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api socket directory: %w", err)
	}
	_ = os.Remove(path) // a socket left by a previous run
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("api socket mode: %w", err)
	}
	return l, nil
}

// serveAPI serves the local API on l (the unix socket at path) until it
// is closed.
func (d *Daemon) serveAPI(ctx context.Context, l net.Listener, path string) *httpServer {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathForwardingTable, jsonHandler(d.forwardingTable))
	mux.HandleFunc("GET "+api.PathMLDGroups, jsonHandler(d.mldGroups))
	mux.HandleFunc("GET "+api.PathMLDInterfaces, jsonHandler(d.mldInterfaces))
	mux.HandleFunc("GET "+api.PathVRRP6, jsonHandler(d.vrrp6Status))
	mux.HandleFunc("GET "+api.PathRBS, jsonHandler(d.rbsServices))
	mux.HandleFunc("GET "+api.PathRBP, jsonHandler(d.rbsProfiles))
	mux.HandleFunc("GET "+api.PathBFD, jsonHandler(d.bfdSessions))
	mux.HandleFunc("GET "+api.PathPIMNeighbors, jsonHandler(d.pimNeighbors))
	mux.HandleFunc("GET "+api.PathPIMInterfaces, jsonHandler(d.pimInterfaces))
	mux.HandleFunc("GET "+api.PathPIMRoutes, jsonHandler(d.pimRoutes))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	// The operator's way in is gone when Serve fails (http.Server
	// retries temporary accept errors itself): the daemon ends with it.
	d.group.Go(func() error {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("api server: %w", err)
		}
		return nil
	})
	return &httpServer{srv: srv, addr: path, path: path}
}

func jsonHandler(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
}

// ifName names an ifindex: a configured interface (names from ifNames),
// else whatever the system calls it.
func ifName(names map[int]string, idx int) string {
	if n, ok := names[idx]; ok {
		return n
	}
	if nl, err := net.InterfaceByIndex(idx); err == nil {
		return nl.Name
	}
	return fmt.Sprintf("if%d", idx)
}

func (d *Daemon) forwardingTable(*http.Request) (any, error) {
	rs, err := d.dp.Routes()
	if err != nil {
		return nil, err
	}
	out := api.ForwardingTable{Routes: []api.Route{}, Reasons: map[string]uint64{}, Gates: map[string]string{}}
	names := d.ifNames()
	for _, r := range rs {
		ar := api.Route{Source: r.Source.String(), Group: r.Group.String(), Incoming: ifName(names, r.IIf), Outgoing: []string{}, Packets: r.Packets, Bytes: r.Bytes, Flags: []string{}}
		if r.IsStar() {
			ar.Source = "*"
		}
		for _, o := range r.OIfs {
			ar.Outgoing = append(ar.Outgoing, ifName(names, o))
		}
		if r.Flags&bpf.RouteStatic != 0 {
			ar.Flags = append(ar.Flags, "static")
		}
		if r.Flags&bpf.RouteSynced != 0 {
			ar.Flags = append(ar.Flags, "synced")
		}
		if r.Flags&bpf.RoutePunt != 0 {
			ar.Flags = append(ar.Flags, "punt") // PIM reads its packets
		}
		out.Routes = append(out.Routes, ar)
	}
	reasons, err := d.dp.Reasons()
	if err != nil {
		return nil, err
	}
	for r, n := range reasons {
		out.Reasons[bpf.ReasonName(r)] = n
	}
	for _, ifc := range d.ifaceList() {
		if e, err := d.dp.Iface(ifc.index); err == nil {
			out.Gates[ifc.name] = map[bool]string{true: "forward", false: "muted"}[e.Gate == bpf.GateForward]
		}
	}
	return out, nil
}

// mldView is an interface's MLD router as a handler found it.
type mldView struct {
	name  string
	index int
	mld   *mld.Interface
}

func (d *Daemon) mldIfaces(r *http.Request) ([]mldView, error) {
	name := r.URL.Query().Get("interface")
	var out []mldView
	d.mu.RLock()
	for _, ifc := range d.ifaces {
		if ifc.mld != nil && (name == "" || name == ifc.name) {
			out = append(out, mldView{ifc.name, ifc.index, ifc.mld})
		}
	}
	d.mu.RUnlock()
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("interface %s: mld not enabled", name)
	}
	slices.SortFunc(out, func(a, b mldView) int { return a.index - b.index })
	return out, nil
}

func secs(d time.Duration) float64 { return d.Seconds() }

func until(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(t.Sub(now), 0).Seconds()
}

func (d *Daemon) mldGroups(r *http.Request) (any, error) {
	ifs, err := d.mldIfaces(r)
	if err != nil {
		return nil, err
	}
	out := []api.MLDGroup{}
	now := time.Now()
	for _, ifc := range ifs {
		for _, g := range ifc.mld.Groups() {
			mg := api.MLDGroup{Interface: ifc.name, Group: g.Group.String(), FilterMode: g.Mode.String(), Sources: []api.MLDSource{}, Version: g.Compat, ExpiresIn: until(now, g.Expires), Synced: g.Synced}
			if g.LastReporter.IsValid() {
				mg.LastReporter = g.LastReporter.String()
			}
			for _, s := range g.Sources {
				mg.Sources = append(mg.Sources, api.MLDSource{Address: s.Addr.String(), ExpiresIn: until(now, s.Expires)})
			}
			out = append(out, mg)
		}
	}
	return out, nil
}

func (d *Daemon) mldInterfaces(r *http.Request) (any, error) {
	ifs, err := d.mldIfaces(r)
	if err != nil {
		return nil, err
	}
	out := []api.MLDInterface{}
	for _, ifc := range ifs {
		st := ifc.mld.Status()
		mi := api.MLDInterface{
			Interface: ifc.name, Version: st.Version, Address: st.Address.String(),
			IsQuerier: st.IsQuerier, QuerierAllowed: st.QuerierAllowed,
			QueryInterval: secs(st.QueryInterval), QueryResponseInterval: secs(st.QueryResponseInterval),
			Robustness: st.Robustness, LastListenerQueryInterval: secs(st.LastListenerQueryInterval),
			OtherQuerierRemaining: secs(st.OtherQuerierRemaining), NextGeneralQuery: secs(st.NextGeneralQuery),
			Groups: st.Groups, Drops: map[string]uint64{},
		}
		if st.Querier.IsValid() {
			mi.Querier = st.Querier.String()
		}
		s := st.Stats
		mi.Received = map[string]uint64{"query_v1": s.RxQueriesV1, "query_v2": s.RxQueriesV2, "report_v1": s.RxReportsV1, "done_v1": s.RxDonesV1, "report_v2": s.RxReportsV2, "records": s.RxRecords}
		mi.Sent = map[string]uint64{"general_query": s.TxGeneralQueries, "group_query": s.TxGroupQueries, "group_source_query": s.TxGroupSourceQueries, "errors": s.TxErrors}
		for reason, n := range s.Drops {
			mi.Drops[reason.String()] = n
		}
		out = append(out, mi)
	}
	return out, nil
}

func (d *Daemon) vrrp6Status(r *http.Request) (any, error) {
	name := r.URL.Query().Get("interface")
	vrid := r.URL.Query().Get("vrid")
	out := []api.VRRP6{}
	type view struct {
		index int
		track uint8
		vrrp  []*vrrpGroup
	}
	var ifs []view
	d.mu.RLock()
	for _, ifc := range d.ifaces {
		if len(ifc.vrrp) > 0 && (name == "" || ifc.name == name) {
			ifs = append(ifs, view{ifc.index, ifc.cfg.MulticastTrackVRRP6, ifc.vrrp})
		}
	}
	d.mu.RUnlock()
	slices.SortFunc(ifs, func(a, b view) int { return a.index - b.index })
	for _, ifc := range ifs {
		for _, g := range ifc.vrrp {
			if vrid != "" && vrid != fmt.Sprint(g.vrid) {
				continue
			}
			st := g.router.Status()
			ts, _ := d.track.Status(ifc.index, g.vrid)
			delay := ts.GateDelay
			v := api.VRRP6{
				Interface: st.Interface, VRID: st.VRID, State: st.State.String(),
				ConfiguredPriority: st.ConfiguredPriority, EffectivePriority: st.EffectivePriority,
				Preempt: st.Preempt, PreemptDelay: secs(st.PreemptDelay), PreemptDelayRemaining: secs(st.PreemptDelayRemaining),
				AcceptMode: st.AcceptMode, VirtualMAC: st.VirtualMAC, LinkLocal: st.LinkLocal.String(),
				MasterPriority: st.MasterPriority, AdvertiseInterval: secs(st.AdvertInterval),
				MasterAdverInterval: secs(st.MasterAdverInterval), SkewTime: secs(st.SkewTime),
				MasterDownInterval: secs(st.MasterDownInterval), MasterDownRemaining: secs(st.MasterDownRemaining),
				TrackedDown: append([]string{}, st.TrackedDown...), MulticastTracked: ifc.track == st.VRID,
				GateWriteDelayUS: float64(delay.Nanoseconds()) / 1e3,
				Transitions:      []api.VRRP6Transition{},
				Counters: map[string]uint64{
					"adverts_received": st.Stats.AdvertsReceived, "adverts_sent": st.Stats.AdvertsSent,
					"priority_zero_received": st.Stats.PriorityZeroReceived, "priority_zero_sent": st.Stats.PriorityZeroSent,
					"na_sent": st.Stats.NASent, "send_errors": st.Stats.SendErrors, "became_master": st.Stats.BecameMaster,
					"interval_mismatch": st.Stats.IntervalMismatch, "address_mismatch": st.Stats.AddressMismatch,
					"lower_priority_discarded": st.Stats.LowerPriorityDiscarded,
				},
				Drops: map[string]uint64{},
			}
			if st.MasterAddr.IsValid() {
				v.MasterAddress = st.MasterAddr.String()
			}
			for _, a := range st.VirtualAddrs {
				v.VirtualIPs = append(v.VirtualIPs, a.String())
			}
			for _, tr := range st.Transitions {
				v.Transitions = append(v.Transitions, api.VRRP6Transition{Time: tr.Time, From: tr.From.String(), To: tr.To.String(), Reason: tr.Reason.String()})
			}
			for reason, n := range st.Stats.Drops {
				if n != 0 {
					v.Drops[vrrp6.DropReason(reason).String()] = n
				}
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func (d *Daemon) rbsServices(r *http.Request) (any, error) {
	name := r.URL.Query().Get("name")
	out := []api.RemoteBackupService{}
	for i, s := range d.servicesSnapshot() {
		if name != "" && s.cfg.Name != name {
			continue
		}
		st := s.svc.Status()
		v := api.RemoteBackupService{
			ServiceIndex: i + 1, ServiceName: st.Name, TCPState: st.State.String(),
			PeerIP: st.Peer.String(), SourceIP: st.Source.String(), TCPPort: st.Port,
			TrackBFD: trackBFD(s.cfg), SSLPolicyName: "--", SSLState: "--", LastUpTime: "--",
			LastDownReason: st.LastDownReason, PeerSysname: st.PeerSysName, Dialer: st.Dialer,
			HoldTime: secs(st.HoldTime),
			Counters: map[string]uint64{
				"messages_in": st.Stats.MsgsIn, "messages_out": st.Stats.MsgsOut,
				"bytes_in": st.Stats.BytesIn, "bytes_out": st.Stats.BytesOut,
				"established": st.Stats.Established, "disconnects": st.Stats.Disconnects,
				"dial_failures": st.Stats.DialFailures, "hold_expired": st.Stats.HoldExpired,
				"strangers_rejected": st.Stats.StrangersRejected,
			},
			Errors: map[string]uint64{},
		}
		if st.TLS {
			v.SSLPolicyName = "tls13-mutual"
			v.SSLState = "disconnected"
			if st.State.String() == "connected" {
				v.SSLState = "connected"
			}
		}
		if !st.LastUpTime.IsZero() {
			v.LastUpTime = st.LastUpTime.Format("2006-01-02 15:04:05")
		}
		for k, n := range st.Stats.Errors {
			v.Errors[k] = n
		}
		out = append(out, v)
	}
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("remote-backup-service %s: not configured", name)
	}
	return out, nil
}

func (d *Daemon) rbsProfiles(r *http.Request) (any, error) {
	name := r.URL.Query().Get("name")
	out := []api.RemoteBackupProfile{}
	for _, b := range d.backupsSnapshot() {
		if name != "" && b.cfg.Name != name {
			continue
		}
		st := b.profile.Status()
		v := api.RemoteBackupProfile{
			ProfileIndex: fmt.Sprintf("0x%x", b.index), ProfileName: b.cfg.Name, Service: "MLD",
			RemoteBackupService: b.cfg.Service, BackupID: b.cfg.BackupID, TrackProtocol: "VRRP",
			VRRPID: b.cfg.VRRP6.VRID, VRRPInterface: b.cfg.VRRP6.Interface,
			State: roleName(st.State), PeerState: roleName(st.PeerState),
			BackupMode: string(b.cfg.PeerBackup), SyncState: st.Sync.String(), Mismatch: st.Mismatch,
			LastSequence: st.LastSeq, AckedSequence: st.AckedSeq,
			SyncLagMS: float64(st.SyncLag.Microseconds()) / 1e3,
			Counters: map[string]uint64{
				"published": st.Published, "entries_sent": st.EntriesSent, "entries_received": st.EntriesReceived,
				"batches_sent": st.BatchesSent, "batches_received": st.BatchesReceived,
				"resyncs_requested": st.ResyncsRequested, "resyncs_served": st.ResyncsServed,
				"window_overflows": st.WindowOverflows, "apply_errors": st.ApplyErrors,
			},
		}
		d.mu.RLock()
		for _, ifc := range d.ifaces {
			if ifc.cfg.RemoteBackupProfile == b.cfg.Name {
				v.Interface = append(v.Interface, ifc.name)
			}
		}
		d.mu.RUnlock()
		slices.Sort(v.Interface)
		out = append(out, v)
	}
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("remote-backup-profile %s: not configured", name)
	}
	return out, nil
}

// roleName spells a profile role as VRP displays do ("Master", "Backup");
// unknown is empty, as in the reference's output before VRRP decides.
func roleName(r rbs.Role) string {
	switch r {
	case rbs.RoleMaster:
		return "Master"
	case rbs.RoleBackup:
		return "Backup"
	}
	return ""
}

// trackBFD is a service's Track-BFD field: its session, or "--".
func trackBFD(sc *config.RBS) string {
	if sc.TrackBFD == "" {
		return "--"
	}
	return sc.TrackBFD
}
