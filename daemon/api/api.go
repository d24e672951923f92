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
)

// Route is one forwarding entry with its counters.
type Route struct {
	Source   string   `json:"source"` // "*" for (*,G)
	Group    string   `json:"group"`
	Incoming string   `json:"incoming"`
	Outgoing []string `json:"outgoing"`
	Packets  uint64   `json:"packets"`
	Bytes    uint64   `json:"bytes"`
	Flags    []string `json:"flags"` // "static", "synced"
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
		return fmt.Errorf("hotcastd: %s: %s", resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

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

// RemoteBackupProfile is "display remote-backup-profile".
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
