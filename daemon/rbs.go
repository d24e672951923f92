package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/sync/mldbackup"
	"github.com/hotcast/hotcast/sync/rbs"
)

// backup is one remote backup profile bound to its MLD interface: the
// master side publishes the interface's MLD entries, the backup side writes
// what it receives into the interface's MLD state (marked synced), whose
// changes reach the BPF maps through the route table like local ones.
// Nothing in it changes: a reload that changes the profile or its service
// unbinds it and binds a new one.
type backup struct {
	cfg     *config.RBP
	svc     *rbs.Service
	profile *rbs.Profile
	binding *mldbackup.Binding // MLD <-> RBS for ifc's MLD router
	ifc     *iface             // the profile's VRRP6 interface, where MLD runs (while bound)
	index   int                // Profile-Index for display
}

// rbsService is one running remote backup service. Its Run ends with
// cancel; done is closed when it has.
type rbsService struct {
	cfg    *config.RBS
	svc    *rbs.Service
	cancel context.CancelFunc
	done   chan struct{}
}

// newService builds (does not start) the service of a configuration.
func (d *Daemon) newService(sc *config.RBS, sysname string) (*rbs.Service, error) {
	c, err := d.rbsConfig(sc, sysname)
	if err != nil {
		return nil, err
	}
	return rbs.New(c, d.log.With("component", "rbs", "service", sc.Name)), nil
}

// rbsConfig is the validated rbs.Config of a service's configuration,
// with the daemon's hooks.
func (d *Daemon) rbsConfig(sc *config.RBS, sysname string) (rbs.Config, error) {
	// Reconnect quickly: a returning master must be resynchronised well
	// within its preempt delay (the reference uses 10 s), and a SYN every
	// 2 s costs nothing.
	c := rbs.Config{Name: sc.Name, SysName: sysname, Source: sc.SourceIPv6, Peer: sc.PeerIPv6, Port: sc.Port, HoldTime: sc.HoldTime,
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: 2 * time.Second, BatchBegin: d.batchBegin}
	c.Dial, c.Listen = d.sys.RBSTransport(sc)
	if sc.TLS != nil {
		tc, err := rbs.TLSConfig(sc.TLS.Cert, sc.TLS.Key, sc.TLS.CA)
		if err != nil {
			return rbs.Config{}, fmt.Errorf("remote-backup-service %s: %w", sc.Name, err)
		}
		c.TLS = tc
	}
	if err := c.Validate(); err != nil {
		return rbs.Config{}, fmt.Errorf("remote-backup-service %s: %w", sc.Name, err)
	}
	return c, nil
}

func (d *Daemon) startRBS(ctx context.Context) error {
	for i := range d.cfg.Services {
		sc := &d.cfg.Services[i]
		svc, err := d.newService(sc, d.cfg.Sysname)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.services = append(d.services, &rbsService{cfg: sc, svc: svc})
		d.mu.Unlock()
	}
	for i := range d.cfg.Profiles {
		b, err := d.bindProfile(&d.cfg.Profiles[i])
		if err != nil {
			return err
		}
		// Until its VRRP6 group decides (startVRRP runs next), a profile
		// only receives.
		b.setRole(false)
	}
	for _, s := range d.services {
		d.runService(ctx, s)
	}
	return nil
}

// service returns the running service named name, or nil (control path).
func (d *Daemon) service(name string) *rbsService {
	for _, s := range d.services {
		if s.cfg.Name == name {
			return s
		}
	}
	return nil
}

// bindProfile creates a profile on its running service and binds it to
// its interface's MLD router (control path). Its role is still unknown.
func (d *Daemon) bindProfile(pc *config.RBP) (*backup, error) {
	ifc := d.ifaces[pc.VRRP6.Interface]
	if ifc == nil || ifc.mld == nil {
		return nil, fmt.Errorf("remote-backup-profile %s: interface %s has no mld (the profile backs up its MLD state)", pc.Name, pc.VRRP6.Interface)
	}
	s := d.service(pc.Service)
	if s == nil {
		return nil, fmt.Errorf("remote-backup-profile %s: remote-backup-service %s is not running", pc.Name, pc.Service)
	}
	b := &backup{cfg: pc, svc: s.svc, ifc: ifc, index: 0x1000 + d.profileSeq}
	d.profileSeq++
	b.binding = mldbackup.Bind(ifc.mld, ifc.log().With("component", "rbs", "profile", pc.Name))
	b.profile = s.svc.AddProfile(rbs.ProfileConfig{Name: pc.Name, BackupID: uint32(pc.BackupID)}, b.binding, b.binding)
	b.binding.SetProfile(b.profile)
	d.mu.Lock()
	ifc.backup = b
	d.backups = append(slices.Clone(d.backups), b)
	d.mu.Unlock()
	return b, nil
}

// unbindProfile takes a profile off its interface: from now on MLD
// changes are not published through it and VRRP6 transitions no longer
// set its role (control path). The caller removes it from its service or
// stops the service.
func (d *Daemon) unbindProfile(b *backup) {
	d.mu.Lock()
	if b.ifc.backup == b {
		b.ifc.backup = nil
	}
	d.backups = slices.DeleteFunc(slices.Clone(d.backups), func(x *backup) bool { return x == b })
	d.mu.Unlock()
}

// runService runs a service until ctx ends or stopService.
func (d *Daemon) runService(ctx context.Context, s *rbsService) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	// A service that stops on an error leaves its profiles unsynced
	// but the router running (the peer shows it down): logged.
	d.group.Go(func() error {
		defer close(s.done)
		if err := s.svc.Run(ctx); err != nil {
			d.log.Error("rbs service", "service", s.cfg.Name, "err", err)
		}
		return nil
	})
}

// stopService ends a service's Run and waits for it: its session closes
// (the peer is told "shutdown") and its profiles are no longer called.
func (d *Daemon) stopService(s *rbsService) {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// backupsSnapshot returns the bound profiles (a snapshot, to use without
// d.mu).
func (d *Daemon) backupsSnapshot() []*backup {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.backups
}

// servicesSnapshot returns the running services (a snapshot).
func (d *Daemon) servicesSnapshot() []*rbsService {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.services
}

// setRole follows the bound VRRP6 group (see mldbackup.Binding.SetRole).
func (b *backup) setRole(master bool) { b.binding.SetRole(master) }
