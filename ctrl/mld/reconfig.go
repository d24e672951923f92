package mld

import (
	"fmt"
	"log/slog"
	"time"
)

// Params are the protocol parameters of a router interface that can change
// while it runs (RFC 3810 §9), the Config fields of the same names. As in
// Config, zero durations and counts take the RFC 3810 §9 defaults
// (LastListenerQueryCount and StartupQueryCount: Robustness;
// StartupQueryInterval: QueryInterval/4) and Version 0 is 2;
// RequireRouterAlert is taken as given.
type Params struct {
	Version                   int
	QueryInterval             time.Duration
	QueryResponseInterval     time.Duration
	Robustness                int
	LastListenerQueryInterval time.Duration
	LastListenerQueryCount    int
	StartupQueryInterval      time.Duration
	StartupQueryCount         int
	RequireRouterAlert        bool
	MaxGroups                 int
}

// Params returns the configured parameters in force (defaults resolved).
// The values the interface uses may differ while another router is
// querier: it then adopts the querier's Robustness and Query Interval
// (RFC 3810 §5.1.8, §5.1.9), which Status shows.
func (i *Interface) Params() Params {
	i.mu.Lock()
	defer i.mu.Unlock()
	return paramsOf(&i.cfg)
}

func paramsOf(c *Config) Params {
	return Params{
		Version:                   c.Version,
		QueryInterval:             c.QueryInterval,
		QueryResponseInterval:     c.QueryResponseInterval,
		Robustness:                c.Robustness,
		LastListenerQueryInterval: c.LastListenerQueryInterval,
		LastListenerQueryCount:    c.LastListenerQueryCount,
		StartupQueryInterval:      c.StartupQueryInterval,
		StartupQueryCount:         c.StartupQueryCount,
		RequireRouterAlert:        c.RequireRouterAlert,
		MaxGroups:                 c.MaxGroups,
	}
}

// SetParams changes the protocol parameters of a running interface (an
// operator's "mld timer query", "mld robust-count", ... or a reload)
// without touching its group state: no group is created, changed or
// removed, no OnChange or OnDelete fires. The parameters are checked as
// New checks them; on error nothing changes.
//
// Timers already running keep going; the new values act from the next
// query or timer computation (RFC 3810 §9 defines the timers from these
// variables each time they are set): a report received after the change
// sets its timers from the new Multicast Address Listening Interval; the
// next general query carries the new Maximum Response Delay, QRV and QQIC,
// the next specific query the new Last Listener Query Interval, and a new
// Version applies to the next message received or sent. One exception
// keeps a change from waiting out an old, longer value: while this router
// is querier, a shorter Query Interval (Startup Query Interval during the
// startup queries) brings the pending general query forward to one new
// interval after the last one. While another router is querier, the Robustness and
// Query Interval learned from its queries stay in use (RFC 3810 §5.1.8,
// §5.1.9) until it goes away; values not learned follow the
// configuration.
func (i *Interface) SetParams(p Params) error {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	return i.setParams(p)
}

// ApplyParams sets the parameters of a configuration; zero values take
// their defaults in New (or SetParams).
func (c *Config) ApplyParams(p Params) {
	c.Version = p.Version
	c.QueryInterval = p.QueryInterval
	c.QueryResponseInterval = p.QueryResponseInterval
	c.Robustness = p.Robustness
	c.LastListenerQueryInterval = p.LastListenerQueryInterval
	c.LastListenerQueryCount = p.LastListenerQueryCount
	c.StartupQueryInterval = p.StartupQueryInterval
	c.StartupQueryCount = p.StartupQueryCount
	c.RequireRouterAlert = p.RequireRouterAlert
	c.MaxGroups = p.MaxGroups
}

func (i *Interface) setParams(p Params) error {
	c := i.cfg
	c.ApplyParams(p)
	if err := c.setDefaults(); err != nil {
		return fmt.Errorf("mld interface %q: set parameters: %w", c.Name, err)
	}
	old := i.cfg
	if paramsOf(&old) == paramsOf(&c) {
		return nil
	}
	i.cfg = c
	// Effective values: the configured ones unless learned from another
	// querier (a learned value equal to the old configured one is taken
	// as not learned: QRV or QQIC 0, or an MLDv1 querier).
	oldQI := i.qi
	other := !i.isQuerier && i.querier.IsValid()
	if !other || i.qrv == old.Robustness {
		i.qrv = c.Robustness
	}
	if !other || i.qi == old.QueryInterval {
		i.qi = c.QueryInterval
	}
	if i.canQuery() && i.gq.running() {
		// The pending general query was armed one interval after the last
		// one: the Startup Query Interval while startup queries remain,
		// else the Query Interval. A shorter one brings it forward.
		was, now := oldQI, i.qi
		if i.startupLeft > 0 {
			was, now = old.StartupQueryInterval, c.StartupQueryInterval
		}
		if now < was {
			last := i.gq.when.Add(-was)
			if due := last.Add(now); due.Before(i.gq.when) {
				i.arm(&i.gq, due.Sub(i.clock.Now()), i.generalQueryTick)
			}
		}
	}
	i.log.Info("mld parameters changed",
		slog.Int("version", c.Version), slog.Duration("query_interval", c.QueryInterval),
		slog.Duration("query_response_interval", c.QueryResponseInterval), slog.Int("robustness", c.Robustness),
		slog.Duration("last_listener_query_interval", c.LastListenerQueryInterval),
		slog.Int("last_listener_query_count", c.LastListenerQueryCount),
		slog.Bool("require_router_alert", c.RequireRouterAlert), slog.Int("max_groups", c.MaxGroups),
		slog.Duration("effective_query_interval", i.qi), slog.Int("effective_robustness", i.qrv))
	return nil
}

// set changes one parameter through SetParams.
func (i *Interface) set(f func(*Params)) error {
	i.mu.Lock()
	defer func() { i.commit(); i.unlock() }()
	p := paramsOf(&i.cfg)
	f(&p)
	return i.setParams(p)
}

// SetVersion sets the MLD version, 1 (RFC 2710 only, RFC 3810 §8.3.1) or
// 2, from the next message sent or received on.
func (i *Interface) SetVersion(v int) error {
	return i.set(func(p *Params) { p.Version = v })
}

// SetQueryInterval sets the Query Interval (RFC 3810 §9.2). See SetParams
// for when it applies; the Startup Query Interval keeps its value.
func (i *Interface) SetQueryInterval(d time.Duration) error {
	return i.set(func(p *Params) { p.QueryInterval = d })
}

// SetQueryResponseInterval sets the Query Response Interval, the Maximum
// Response Delay of general queries (RFC 3810 §9.3). It must stay below
// the Query Interval.
func (i *Interface) SetQueryResponseInterval(d time.Duration) error {
	return i.set(func(p *Params) { p.QueryResponseInterval = d })
}

// SetRobustness sets the Robustness Variable (RFC 3810 §9.1). The Last
// Listener and Startup Query Counts keep their values (use SetParams with
// zero counts to have them follow it).
func (i *Interface) SetRobustness(n int) error {
	return i.set(func(p *Params) { p.Robustness = n })
}

// SetLastListenerQueryInterval sets the Last Listener Query Interval
// (RFC 3810 §9.8): the Maximum Response Delay of specific queries and the
// time between their retransmissions.
func (i *Interface) SetLastListenerQueryInterval(d time.Duration) error {
	return i.set(func(p *Params) { p.LastListenerQueryInterval = d })
}

// SetLastListenerQueryCount sets the Last Listener Query Count
// (RFC 3810 §9.9).
func (i *Interface) SetLastListenerQueryCount(n int) error {
	return i.set(func(p *Params) { p.LastListenerQueryCount = n })
}

// SetRequireRouterAlert sets whether messages without a Router Alert
// option are dropped (RFC 3810 §5).
func (i *Interface) SetRequireRouterAlert(b bool) error {
	return i.set(func(p *Params) { p.RequireRouterAlert = b })
}

// SetMaxGroups sets the group limit. Lowering it below the current count
// removes nothing: new groups are refused until the count drops below it.
func (i *Interface) SetMaxGroups(n int) error {
	return i.set(func(p *Params) { p.MaxGroups = n })
}
