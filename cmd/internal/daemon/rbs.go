package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hotcast/hotcast/cmd/internal/config"
	"github.com/hotcast/hotcast/ctrl/mld"
	"github.com/hotcast/hotcast/sync/mldbackup"
	"github.com/hotcast/hotcast/sync/rbs"
)

// backup is one remote backup profile bound to its MLD interface: the
// master side publishes the interface's MLD entries, the backup side writes
// what it receives into the interface's MLD state (marked synced), whose
// changes reach the BPF maps through the route table like local ones.
type backup struct {
	cfg     *config.RBP
	svc     *rbs.Service
	svcCfg  *config.RBS
	profile *rbs.Profile
	ifc     *iface // the profile's VRRP6 interface, where MLD runs
	index   int    // Profile-Index for display
}

func (d *Daemon) startRBS(ctx context.Context) error {
	services := map[string]*rbs.Service{}
	for i := range d.cfg.Services {
		sc := &d.cfg.Services[i]
		// Reconnect quickly: a returning master must be resynchronised
		// well within its preempt delay (the reference uses 10 s), and a
		// SYN every 2 s costs nothing.
		c := rbs.Config{Name: sc.Name, SysName: d.cfg.Sysname, Source: sc.SourceIPv6, Peer: sc.PeerIPv6, Port: sc.Port, HoldTime: sc.HoldTime,
			ReconnectMin: 200 * time.Millisecond, ReconnectMax: 2 * time.Second}
		if sc.TLS != nil {
			tc, err := rbs.TLSConfig(sc.TLS.Cert, sc.TLS.Key, sc.TLS.CA)
			if err != nil {
				return fmt.Errorf("remote-backup-services[%d] %s: %w", i, sc.Name, err)
			}
			c.TLS = tc
		}
		if err := c.Validate(); err != nil {
			return fmt.Errorf("remote-backup-services[%d] %s: %w", i, sc.Name, err)
		}
		svc := rbs.New(c, d.log.With("component", "rbs", "service", sc.Name))
		services[sc.Name] = svc
		d.services = append(d.services, rbsService{cfg: sc, svc: svc})
	}
	for i := range d.cfg.Profiles {
		pc := &d.cfg.Profiles[i]
		ifc := d.ifaces[pc.VRRP6.Interface]
		if ifc == nil || ifc.mld == nil {
			return fmt.Errorf("remote-backup-profiles[%d] %s: interface %s has no mld", i, pc.Name, pc.VRRP6.Interface)
		}
		b := &backup{cfg: pc, svc: services[pc.Service], svcCfg: d.cfg.Service(pc.Service), ifc: ifc, index: 0x1000 + i}
		b.profile = b.svc.AddProfile(rbs.ProfileConfig{Name: pc.Name, BackupID: uint32(pc.BackupID)}, mldSource{b}, mldSink{b})
		ifc.backup = b
		d.backups = append(d.backups, b)
		// Until its VRRP6 group decides (startVRRP runs next), a profile
		// only receives.
		b.setRole(false)
	}
	for _, s := range d.services {
		d.wg.Add(1)
		go func(svc *rbs.Service) {
			defer d.wg.Done()
			if err := svc.Run(ctx); err != nil {
				d.log.Error("rbs service", "err", err)
			}
		}(s.svc)
	}
	return nil
}

type rbsService struct {
	cfg *config.RBS
	svc *rbs.Service
}

func (b *backup) setRole(master bool) {
	if master {
		b.profile.SetRole(rbs.RoleMaster)
		return
	}
	// The peer is the authority now: what it replicates replaces what
	// this router learned itself, so both end with the same entries.
	b.ifc.mld.DisownAll()
	b.profile.SetRole(rbs.RoleBackup)
}

// mldSource gives the sender's batch: every group of the interface, synced
// ones included (a new master replays what it took over).
type mldSource struct{ b *backup }

func (s mldSource) Snapshot(uint32) []rbs.MLDEntry {
	now := time.Now()
	gs := s.b.ifc.mld.Groups()
	out := make([]rbs.MLDEntry, 0, len(gs))
	for _, g := range gs {
		if !linkScope(g.Group) {
			out = append(out, mldbackup.ToEntry(g, now))
		}
	}
	return out
}

// mldSink applies the receiver's entries to the interface's MLD state.
type mldSink struct{ b *backup }

func (s mldSink) ReplaceAll(_ uint32, es []rbs.MLDEntry) error {
	now := time.Now()
	st := make([]mld.GroupState, 0, len(es))
	for _, e := range es {
		st = append(st, mldbackup.FromEntry(e, now))
	}
	return s.b.ifc.mld.Import(st)
}

func (s mldSink) Upsert(_ uint32, e rbs.MLDEntry) error {
	err := s.b.ifc.mld.Upsert(mldbackup.FromEntry(e, time.Now()))
	if err != nil && !isLocal(err) {
		return err
	}
	return nil
}

func (s mldSink) Delete(_ uint32, g netip.Addr) error {
	s.b.ifc.mld.Delete(g)
	return nil
}

func isLocal(err error) bool { return errors.Is(err, mld.ErrLocalEntry) }
