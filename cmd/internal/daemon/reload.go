package daemon

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hotcast/hotcast/cmd/internal/config"
)

// ErrNeedsRestart is returned by Reload for changes it cannot apply in
// place; the running configuration stays in force.
var ErrNeedsRestart = errors.New("needs a restart")

// Reload applies a new configuration (SIGHUP). What it applies in place,
// without touching anything else: the static routes (as a difference, so
// unchanged routes and learned groups are not disturbed). Any other change
// is refused as a whole, with the list of what changed, and the running
// configuration stays: hotcastd can then be restarted, which is hitless
// for the fast path (the pinned dataplane forwards on and is adopted).
func (d *Daemon) Reload(next *config.Config) error {
	if d.table == nil {
		return errors.New("reload: not running yet")
	}
	var other []string
	static := false
	for _, c := range config.Diff(d.cfg, next) {
		if c.Path == "multicast.static-routes" {
			static = true
			continue
		}
		other = append(other, c.String())
	}
	if len(other) > 0 {
		return fmt.Errorf("reload: %s: %w (static routes are applied in place)", strings.Join(other, ", "), ErrNeedsRestart)
	}
	if !static {
		d.log.Info("reload: nothing changed")
		return nil
	}
	routes := d.staticRoutes(next)
	if err := d.table.SetStatic(routes); err != nil {
		return fmt.Errorf("reload static routes: %w", err)
	}
	d.cfg.Multicast.StaticRoutes = next.Multicast.StaticRoutes
	d.log.Info("reload: static routes applied", "routes", len(routes))
	return nil
}
