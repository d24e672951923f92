package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/hotcast/hotcast/ctrl/vrrp6"
	"github.com/hotcast/hotcast/daemon/config"
	"github.com/hotcast/hotcast/sync/rbs"
)

// rbsPlan is what a reload changes in hot backup. A service whose
// configuration changed is replaced: stopped and started anew, with its
// profiles bound again. A profile that changed, or whose service is
// replaced, is unbound and bound anew.
type rbsPlan struct {
	stop  map[string]bool // running services to stop (removed or changed)
	start []string        // services of next to start (added or changed), in order
	drop  map[string]bool // bound profiles to unbind
	bind  []string        // profiles of next to bind, in order
}

func (pl *rbsPlan) empty() bool {
	return len(pl.stop)+len(pl.start)+len(pl.drop)+len(pl.bind) == 0
}

// planRBS turns the hot-backup part of the change set cs from old to next
// into a plan: services removed or modified stop, added or modified ones
// start (in the order of next); profiles removed, modified or on a stopped
// service are unbound, and those of next among them or added are bound (in
// the order of next).
func planRBS(old, next *config.Config, cs *config.ChangeSet) rbsPlan {
	pl := rbsPlan{stop: map[string]bool{}, drop: map[string]bool{}}
	for _, c := range cs.Services {
		if c.Op == config.Removed || c.Op == config.Modified {
			pl.stop[c.Name] = true
		}
		if c.Op == config.Added || c.Op == config.Modified {
			pl.start = append(pl.start, c.Name)
		}
	}
	for _, pc := range old.Profiles {
		if op := cs.Profile(pc.Name); op == config.Removed || op == config.Modified || pl.stop[pc.Service] {
			pl.drop[pc.Name] = true
		}
	}
	for _, pc := range next.Profiles {
		if cs.Profile(pc.Name) == config.Added || pl.drop[pc.Name] {
			pl.bind = append(pl.bind, pc.Name)
		}
	}
	return pl
}

// checkProfiles: every profile of next backs up the MLD state of its
// interface, which must run MLD (as start-up requires).
func checkProfiles(next *config.Config) error {
	for _, pc := range next.Profiles {
		if ic := next.Interface(pc.VRRP6.Interface); ic == nil || !ic.MLD.Enable {
			return fmt.Errorf("remote-backup-profile %s: interface %s has no mld.enable (the profile backs up its MLD state)", pc.Name, pc.VRRP6.Interface)
		}
	}
	return nil
}

// prepareRBS builds the services a reload starts (TLS files read,
// configuration checked) before anything changes.
func (d *Daemon) prepareRBS(next *config.Config, pl *rbsPlan) (map[string]*rbs.Service, error) {
	if err := checkProfiles(next); err != nil {
		return nil, err
	}
	out := map[string]*rbs.Service{}
	for _, name := range pl.start {
		svc, err := d.newService(next.Service(name), next.Sysname)
		if err != nil {
			return nil, err
		}
		out[name] = svc
	}
	return out, nil
}

// dropRBS unbinds the profiles a reload removes or replaces and stops the
// services it removes or replaces (control path). It runs before any MLD
// router they use stops. The MLD state stays as it is, and with it the
// routes: a standby keeps what it received until the next batch of a
// new session replaces it.
func (d *Daemon) dropRBS(pl *rbsPlan) {
	for _, b := range d.backups {
		if !pl.drop[b.cfg.Name] {
			continue
		}
		d.unbindProfile(b)
		if !pl.stop[b.cfg.Service] {
			// Its service stays: the peer is told the profile is gone.
			b.svc.RemoveProfile(uint32(b.cfg.BackupID))
		}
		b.ifc.log().Info("reload: remote backup profile unbound", "profile", b.cfg.Name, "backup_id", b.cfg.BackupID)
	}
	for _, s := range d.services {
		if !pl.stop[s.cfg.Name] {
			continue
		}
		d.mu.Lock()
		d.services = slices.DeleteFunc(slices.Clone(d.services), func(x *rbsService) bool { return x == s })
		d.mu.Unlock()
		d.stopService(s)
		d.log.Info("reload: remote backup service stopped", "service", s.cfg.Name)
	}
}

// addRBS starts the services a reload adds or replaces and binds the
// profiles it adds or replaces, each in its tracked VRRP6 group's role
// (control path, after the interfaces changed): a Master's profile sends
// its batch as soon as its session is up. Services start once their
// profiles are bound, so their first Hello lists them.
func (d *Daemon) addRBS(ctx context.Context, next *config.Config, pl *rbsPlan, built map[string]*rbs.Service) []error {
	var started []*rbsService
	for _, name := range pl.start {
		sc := *next.Service(name)
		s := &rbsService{cfg: &sc, svc: built[name]}
		d.mu.Lock()
		d.services = append(slices.Clone(d.services), s)
		d.mu.Unlock()
		started = append(started, s)
	}
	var errs []error
	for _, name := range pl.bind {
		pc := *next.Profile(name)
		b, err := d.bindProfile(&pc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		role := d.initRole(b)
		b.ifc.log().Info("reload: remote backup profile bound", "profile", pc.Name, "backup_id", pc.BackupID, "service", pc.Service, "role", role)
	}
	for _, s := range started {
		d.runService(ctx, s)
		d.log.Info("reload: remote backup service started", "service", s.cfg.Name, "peer", s.cfg.PeerIPv6, "port", s.cfg.Port,
			"hold_time", s.cfg.HoldTime, "tls", s.cfg.TLS != nil)
	}
	d.orderRBS(next)
	return errs
}

// initRole gives a profile a reload bound the state of its tracked VRRP6
// group, read under the group's lock: a transition either came before
// (its state is what is read) or comes after the profile was bound (and
// sets the role itself, as for every bound profile).
func (d *Daemon) initRole(b *backup) rbs.Role {
	var g *vrrpGroup
	if ifc := d.ifaces[b.cfg.VRRP6.Interface]; ifc != nil {
		g = ifc.group(b.cfg.VRRP6.VRID)
	}
	if g == nil {
		b.setRole(false)
		return rbs.RoleBackup
	}
	role := rbs.RoleBackup
	g.router.WithState(func(s vrrp6.State) {
		master := s == vrrp6.StateMaster
		if master {
			role = rbs.RoleMaster
		}
		b.setRole(master)
	})
	return role
}

// orderRBS puts the services and profiles in the order of next (the order
// of the displays).
func (d *Daemon) orderRBS(next *config.Config) {
	pos := func(names []string, name string) int {
		if i := slices.Index(names, name); i >= 0 {
			return i
		}
		return len(names)
	}
	var sn, pn []string
	for _, s := range next.Services {
		sn = append(sn, s.Name)
	}
	for _, p := range next.Profiles {
		pn = append(pn, p.Name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.services = slices.Clone(d.services)
	slices.SortStableFunc(d.services, func(a, b *rbsService) int { return pos(sn, a.cfg.Name) - pos(sn, b.cfg.Name) })
	d.backups = slices.Clone(d.backups)
	slices.SortStableFunc(d.backups, func(a, b *backup) int { return pos(pn, a.cfg.Name) - pos(pn, b.cfg.Name) })
}

// rbsRecord is the hot-backup part of the running configuration: what
// runs.
func (d *Daemon) rbsRecord() ([]config.RBS, []config.RBP) {
	var ss []config.RBS
	for _, s := range d.services {
		ss = append(ss, *s.cfg)
	}
	var ps []config.RBP
	for _, b := range d.backups {
		ps = append(ps, *b.cfg)
	}
	return ss, ps
}
