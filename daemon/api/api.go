// Package api is the local API between hotcastd and hotcastctl: JSON over
// HTTP on a unix socket (mode 0600, root). The JSON field names are stable
// and documented in docs/operations.md.
package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Paths served by the daemon.
const (
	PathForwardingTable = "/v1/multicast/forwarding-table"
	PathMLDGroups       = "/v1/mld/groups"
	PathMLDInterfaces   = "/v1/mld/interfaces"
	PathVRRP6           = "/v1/vrrp6"
	PathRBS             = "/v1/remote-backup-services"
	PathRBP             = "/v1/remote-backup-profiles"
	PathBFD             = "/v1/bfd/sessions"
	PathPIMNeighbors    = "/v1/pim/neighbors"
	PathPIMInterfaces   = "/v1/pim/interfaces"
	PathPIMRoutes       = "/v1/pim/routing-table"
)

// PIMNotRunning is the daemon's answer to a PIM path while no interface
// runs PIM; hotcastctl prints it as is.
const PIMNotRunning = "PIM is not running"

// Route is one forwarding entry with its counters.
type Route struct {
	Source   string   `json:"source"` // "*" for (*,G)
	Group    string   `json:"group"`
	Incoming string   `json:"incoming"`
	Outgoing []string `json:"outgoing"`
	Packets  uint64   `json:"packets"`
	Bytes    uint64   `json:"bytes"`
	Flags    []string `json:"flags"` // "static", "synced", "punt" (PIM reads its packets)
}

// ForwardingTable is the answer to PathForwardingTable.
type ForwardingTable struct {
	Routes  []Route           `json:"routes"`
	Reasons map[string]uint64 `json:"reasons"` // frames by fast-path reason
	Gates   map[string]string `json:"gates"`   // interface -> forward|muted
}

// Client talks to a daemon's socket.
type Client struct {
	hc *http.Client
}

// NewClient returns a client for the unix socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Get fetches path (with query) and decodes the JSON answer into v.
func (c *Client) Get(ctx context.Context, path string, q url.Values, v any) error {
	u := "http://hotcastd" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach hotcastd: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Status: resp.Status, Code: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// StatusError is an answer of the daemon other than 200 OK: Message is
// what the handler said (an unknown name, "PIM is not running").
type StatusError struct {
	Status  string // "400 Bad Request"
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("hotcastd: %s: %s", e.Status, e.Message) }

// GetRaw fetches path and returns the JSON body as is.
func (c *Client) GetRaw(ctx context.Context, path string, q url.Values) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.Get(ctx, path, q, &raw)
	return raw, err
}

// MLDSource is one source of an MLD group record.
type MLDSource struct {
	Address   string  `json:"address"`
	ExpiresIn float64 `json:"expires_in"` // seconds; 0 = timer stopped (excluded in EXCLUDE mode)
}

// MLDGroup is one (interface, group) record (RFC 3810 7.2).
type MLDGroup struct {
	Interface    string      `json:"interface"`
	Group        string      `json:"group"`
	FilterMode   string      `json:"filter_mode"` // include|exclude
	Sources      []MLDSource `json:"sources"`
	Version      int         `json:"version"` // compatibility mode: 1 or 2
	LastReporter string      `json:"last_reporter"`
	ExpiresIn    float64     `json:"expires_in"` // filter timer, seconds; 0 in INCLUDE mode
	Synced       bool        `json:"synced"`     // learned through RBS
}

// MLDInterface is one interface's querier state and counters.
type MLDInterface struct {
	Interface                 string            `json:"interface"`
	Version                   int               `json:"version"`
	Address                   string            `json:"address"`
	Querier                   string            `json:"querier"`
	IsQuerier                 bool              `json:"is_querier"`
	QuerierAllowed            bool              `json:"querier_allowed"` // false while the tracked VRRP6 group is Backup
	QueryInterval             float64           `json:"query_interval"`
	QueryResponseInterval     float64           `json:"query_response_interval"`
	Robustness                int               `json:"robustness"`
	LastListenerQueryInterval float64           `json:"last_listener_query_interval"`
	OtherQuerierRemaining     float64           `json:"other_querier_remaining"`
	NextGeneralQuery          float64           `json:"next_general_query"`
	Groups                    int               `json:"groups"`
	Received                  map[string]uint64 `json:"received"`
	Sent                      map[string]uint64 `json:"sent"`
	Drops                     map[string]uint64 `json:"drops"`
}

// VRRP6Transition is one state change of a virtual router.
type VRRP6Transition struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// VRRP6 is one virtual router (interface, VRID).
type VRRP6 struct {
	Interface             string            `json:"interface"`
	VRID                  uint8             `json:"vrid"`
	State                 string            `json:"state"` // Initialize|Backup|Master
	ConfiguredPriority    uint8             `json:"configured_priority"`
	EffectivePriority     uint8             `json:"effective_priority"`
	Preempt               bool              `json:"preempt"`
	PreemptDelay          float64           `json:"preempt_delay"`
	PreemptDelayRemaining float64           `json:"preempt_delay_remaining"`
	AcceptMode            bool              `json:"accept_mode"`
	VirtualIPs            []string          `json:"virtual_ips"`
	VirtualMAC            string            `json:"virtual_mac"`
	LinkLocal             string            `json:"link_local"`
	MasterAddress         string            `json:"master_address"`
	MasterPriority        uint8             `json:"master_priority"`
	AdvertiseInterval     float64           `json:"advertise_interval"`
	MasterAdverInterval   float64           `json:"master_adver_interval"`
	SkewTime              float64           `json:"skew_time"`
	MasterDownInterval    float64           `json:"master_down_interval"`
	MasterDownRemaining   float64           `json:"master_down_remaining"`
	TrackedDown           []string          `json:"tracked_down"`
	MulticastTracked      bool              `json:"multicast_tracked"`   // multicast-track-vrrp6 names this group
	GateWriteDelayUS      float64           `json:"gate_write_delay_us"` // last state change -> gate written
	Transitions           []VRRP6Transition `json:"transitions"`
	Counters              map[string]uint64 `json:"counters"`
	Drops                 map[string]uint64 `json:"drops"`
}

// RemoteBackupService is "display remote-backup-service".
type RemoteBackupService struct {
	ServiceIndex   int               `json:"service_index"`
	ServiceName    string            `json:"service_name"`
	TCPState       string            `json:"tcp_state"` // connected|connecting|backoff|hello-sent|idle
	PeerIP         string            `json:"peer_ip"`
	SourceIP       string            `json:"source_ip"`
	TCPPort        uint16            `json:"tcp_port"`
	TrackBFD       string            `json:"track_bfd"`
	SSLPolicyName  string            `json:"ssl_policy_name"`
	SSLState       string            `json:"ssl_state"`
	LastUpTime     string            `json:"last_up_time"`
	LastDownReason string            `json:"last_down_reason"`
	PeerSysname    string            `json:"peer_sysname"`
	Dialer         bool              `json:"dialer"`
	HoldTime       float64           `json:"hold_time"`
	Counters       map[string]uint64 `json:"counters"`
	Errors         map[string]uint64 `json:"errors"`
}

// BFDSession is "display bfd session": one session's state, negotiated
// timers (seconds) and counters.
type BFDSession struct {
	Name              string            `json:"name"`
	Interface         string            `json:"interface"`
	LocalAddress      string            `json:"local_address"` // "--" when the kernel chooses
	PeerAddress       string            `json:"peer_address"`
	State             string            `json:"state"` // AdminDown|Down|Init|Up
	RemoteState       string            `json:"remote_state"`
	LocalDiscr        uint32            `json:"local_discriminator"`
	RemoteDiscr       uint32            `json:"remote_discriminator"`
	LocalDiag         string            `json:"local_diag"`
	RemoteDiag        string            `json:"remote_diag"`
	DetectMult        uint8             `json:"detect_multiplier"`
	RemoteDetectMult  uint8             `json:"remote_detect_multiplier"`
	DesiredMinTx      float64           `json:"desired_min_tx"`
	RequiredMinRx     float64           `json:"required_min_rx"`
	RemoteMinTx       float64           `json:"remote_min_tx"`
	RemoteMinRx       float64           `json:"remote_min_rx"`
	TxInterval        float64           `json:"tx_interval"` // negotiated
	DetectTime        float64           `json:"detect_time"`
	Passive           bool              `json:"passive"`
	Failed            bool              `json:"failed"`
	UpSince           *time.Time        `json:"up_since,omitempty"`
	UptimeSeconds     float64           `json:"uptime"`
	LastChange        time.Time         `json:"last_change"`
	TrackedBy         []string          `json:"tracked_by"` // "vrrp6 IF vrid N", "remote-backup-service NAME"
	Counters          map[string]uint64 `json:"counters"`
	Drops             map[string]uint64 `json:"drops"`
	EnginePolicy      string            `json:"engine_policy"` // SCHED_FIFO/SCHED_OTHER and why
	EngineMaxLateness float64           `json:"engine_max_lateness"`
}

// RemoteBackupProfile is "display remote-backup-profile".
type RemoteBackupProfile struct {
	ProfileIndex        string            `json:"profile_index"`
	ProfileName         string            `json:"profile_name"`
	Service             string            `json:"service"`
	RemoteBackupService string            `json:"remote_backup_service"`
	BackupID            uint16            `json:"backup_id"`
	TrackProtocol       string            `json:"track_protocol"`
	VRRPID              uint8             `json:"vrrp_id"`
	VRRPInterface       string            `json:"vrrp_interface"`
	State               string            `json:"state"`      // Master|Backup|Unknown (local role)
	PeerState           string            `json:"peer_state"` // the peer's role
	Interface           []string          `json:"interface"`
	BackupMode          string            `json:"backup_mode"`
	SyncState           string            `json:"sync_state"`
	Mismatch            string            `json:"mismatch"`
	LastSequence        uint64            `json:"last_sequence"`
	AckedSequence       uint64            `json:"acked_sequence"`
	SyncLagMS           float64           `json:"sync_lag_ms"`
	Counters            map[string]uint64 `json:"counters"`
}

// PIMNeighbor is one line of "display pim neighbor": a neighbour on one
// PIM interface, as its last Hello described it (RFC 7761 §4.3.2). Times
// are seconds.
type PIMNeighbor struct {
	Interface string `json:"interface"`
	Address   string `json:"address"` // primary: the link-local source of its Hellos
	// SecondaryAddresses are its Address List option (§4.3.4).
	SecondaryAddresses []string  `json:"secondary_addresses"`
	Since              time.Time `json:"since"` // neighbour since (or its last restart, a new Generation ID)
	UptimeSeconds      float64   `json:"uptime"`
	// ExpiresIn is the holdtime left; 0 with NeverExpires (Holdtime
	// 0xffff).
	ExpiresIn    float64 `json:"expires_in"`
	NeverExpires bool    `json:"never_expires"`
	Holdtime     float64 `json:"holdtime"` // advertised, or 105 s without the option
	// DRPriority and GenerationID are absent when its Hello lacked the
	// option.
	DRPriority   *uint32 `json:"dr_priority,omitempty"`
	GenerationID *uint32 `json:"generation_id,omitempty"`
	IsDR         bool    `json:"is_dr"` // the link's elected DR
	// LANPruneDelay is absent when its Hellos have no LAN Prune Delay
	// option (§4.3.3).
	LANPruneDelay *PIMLANPruneDelay `json:"lan_prune_delay,omitempty"`
}

// PIMLANPruneDelay is a LAN Prune Delay option (seconds).
type PIMLANPruneDelay struct {
	PropagationDelay float64 `json:"propagation_delay"`
	OverrideInterval float64 `json:"override_interval"`
	Tracking         bool    `json:"tracking"` // the T bit: join suppression may be disabled
}

// PIMInterface is "display pim interface": one PIM interface's state,
// timers (seconds) and counters.
type PIMInterface struct {
	Interface    string `json:"interface"`
	State        string `json:"state"`   // up|down
	Address      string `json:"address"` // link-local: the source of its messages
	GenerationID uint32 `json:"generation_id"`
	Neighbors    int    `json:"neighbors"`
	DR           string `json:"dr"` // "" while down
	IsDR         bool   `json:"is_dr"`
	DRPriority   uint32 `json:"dr_priority"`
	// HelloInterval is Hello_Period, Holdtime what the Hellos
	// advertise; NextHello the time to the next one.
	HelloInterval float64 `json:"hello_interval"`
	Holdtime      float64 `json:"holdtime"`
	NextHello     float64 `json:"next_hello"`
	// The LAN Prune Delay values in force (§4.3.3): LANDelayEnabled when
	// every router on the link sends the option; the effective delays;
	// JoinSuppression off only when all of them set the T bit.
	LANDelayEnabled   bool    `json:"lan_delay_enabled"`
	PropagationDelay  float64 `json:"propagation_delay"`
	OverrideInterval  float64 `json:"override_interval"`
	JoinSuppression   bool    `json:"join_suppression"`
	IgnoreDRState     bool    `json:"ignore_dr_state"`
	IgnoreAssertState bool    `json:"ignore_assert_state"`
	// Received and Sent count messages by type (hello, join-prune,
	// assert, register, register-stop); Counters the neighbour events
	// and send errors; Drops the packets dropped, by reason (non-zero
	// only).
	Received map[string]uint64 `json:"received"`
	Sent     map[string]uint64 `json:"sent"`
	Counters map[string]uint64 `json:"counters"`
	Drops    map[string]uint64 `json:"drops"`
}

// PIMRoutingTable is "display pim routing-table": the (*,G) and (S,G)
// entries, their totals, the RPs and the router's counters.
type PIMRoutingTable struct {
	StarGEntries int        `json:"star_g_entries"` // of Routes
	SGEntries    int        `json:"s_g_entries"`
	Routes       []PIMRoute `json:"routes"`
	RPs          []PIMRP    `json:"rps"`        // the static RPs
	SPTSwitch    string     `json:"spt_switch"` // immediate|never
	Statistics   PIMStats   `json:"statistics"`
}

// PIMRoute is one (*,G) or (S,G) entry.
type PIMRoute struct {
	Source   string `json:"source,omitempty"` // absent for (*,G)
	Group    string `json:"group"`
	RP       string `json:"rp,omitempty"` // absent for SSM
	Protocol string `json:"protocol"`     // pim-sm|pim-ssm
	// Flags are the entry's flags: WC, RPT, SPT, Register,
	// JoinPending, RegisterPrune, LocalRP.
	Flags []string `json:"flags"`
	// UpstreamInterface is the RPF interface, absent when there is
	// none (this router is the RP, or no route); UpstreamNeighbor is
	// RPF', where the joins go, absent when there is none (a directly
	// connected source, this router the RP, no PIM neighbour that way).
	UpstreamInterface string `json:"upstream_interface,omitempty"`
	UpstreamNeighbor  string `json:"upstream_neighbor,omitempty"`
	Joined            bool   `json:"joined"` // upstream state Joined
	// Downstreams is the outgoing interface list.
	Downstreams []PIMDownstream `json:"downstreams"`
}

// PIMDownstream is one outgoing interface of a PIM route: downstream join
// state put it there (Joined, expiring in ExpiresIn seconds), local MLD
// listeners (Local), or both.
type PIMDownstream struct {
	Interface string  `json:"interface"`
	Joined    bool    `json:"joined"`
	ExpiresIn float64 `json:"expires_in"` // 0 unless Joined
	// NeverExpires: joined with Holdtime 0xffff, held until pruned.
	NeverExpires bool `json:"never_expires,omitempty"`
	Local        bool `json:"local"`
}

// PIMRP is one static RP.
type PIMRP struct {
	Address    string `json:"address"`
	GroupRange string `json:"group_range"`
}

// PIMStats are the PIM router's counters and the daemon's data-path ones.
type PIMStats struct {
	// JoinPrune: received (addressed to this router), seen (to another
	// one, for suppression and override), sent.
	JoinPrune      map[string]uint64 `json:"join_prune"`
	JoinPruneDrops map[string]uint64 `json:"join_prune_drops"` // by reason
	// Assert: received, sent, dropped.
	Assert map[string]uint64 `json:"assert"`
	// Register: sent, null_sent, received, decapsulated, stop_sent,
	// stop_received.
	Register      map[string]uint64 `json:"register"`
	RegisterDrops map[string]uint64 `json:"register_drops"` // by reason
	SendErrors    uint64            `json:"send_errors"`
	// Data is the daemon's data path: data_received, data_dropped,
	// registers_sent, register_errors, decap_forwarded, decap_errors,
	// counter_polls.
	Data map[string]uint64 `json:"data"`
}
