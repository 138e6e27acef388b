package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/internal/storesql"
)

// The webhook events: the seed's four and the test event.
const (
	EventCredentialExpired      = "credential.expired"
	EventCredentialExpiringSoon = "credential.expiring_soon"
	EventCredentialError        = "credential.error"
	EventUsageLimitReached      = "usage.limit_reached"
	EventWebhookTest            = "webhook.test"
)

// WebhookEvents are the events an endpoint may subscribe to.
var WebhookEvents = []string{EventCredentialExpired, EventCredentialExpiringSoon, EventCredentialError, EventUsageLimitReached}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
)

// ExpiringSoonWindow is how long before its expiry a credential raises
// credential.expiring_soon.
const ExpiringSoonWindow = 7 * 24 * time.Hour

// CredentialErrorInterval is the least time between two credential.error
// events of one credential.
const CredentialErrorInterval = time.Hour

// DisableAfter is how long an endpoint may fail without a success before it
// is disabled.
const DisableAfter = 5 * 24 * time.Hour

// Webhook is an endpoint as the API shows it. Secret is set only in the
// answer of create and rotate-secret.
type Webhook struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Description    string     `json:"description"`
	Events         []string   `json:"events"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabledReason,omitempty"`
	FailingSince   *time.Time `json:"failingSince,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	Secret         string     `json:"secret,omitempty"`
}

// WebhookInput is what creating an endpoint takes. The URL is checked by
// the caller (server/webhook.CheckURL: scheme and address policy).
type WebhookInput struct {
	URL         string
	Description string
	Events      []string
}

// WebhookPatch changes some of an endpoint; nil fields stay. Enabling an
// endpoint clears its failure record.
type WebhookPatch struct {
	URL         *string
	Description *string
	Events      []string
	Enabled     *bool
}

// NewWebhookSecret returns a new endpoint secret: whsec_ and the base64 of
// 32 random bytes (the Standard Webhooks form).
func NewWebhookSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// checkEvents validates and normalises an event list: known names, no
// duplicates, at least one.
func checkEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "missing events: subscribe to one or more of %s", strings.Join(WebhookEvents, ", "))
	}
	out := []string{}
	for _, e := range events {
		e = strings.TrimSpace(e)
		if !slices.Contains(WebhookEvents, e) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "unknown event %q: use one of %s", e, strings.Join(WebhookEvents, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func checkDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if len([]rune(d)) > 500 || strings.ContainsAny(d, "\x00\r\n") {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "description must be one line of at most 500 characters")
	}
	return d, nil
}

func webhookAAD(id string) []byte { return []byte("webhook-secret\x00" + id) }

func webhookNotFound(id string) error {
	return agentkeys.Errorf(agentkeys.ENOTFOUND, "no webhook with id %q: see `agentkeys webhooks list`", id)
}

const webhookCols = `id, url, description, events, enabled, disabled_reason, failing_since, created_at, updated_at`

func scanWebhook(r storesql.RowScanner) (*Webhook, error) {
	var h Webhook
	var events string
	var enabled int
	var failing sql.NullInt64
	var created, updated int64
	if err := r.Scan(&h.ID, &h.URL, &h.Description, &events, &enabled, &h.DisabledReason, &failing, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &h.Events); err != nil {
		return nil, fmt.Errorf("webhook %s: events: %w", h.ID, err)
	}
	h.Enabled, h.FailingSince = enabled != 0, storesql.NullTime(failing)
	h.CreatedAt, h.UpdatedAt = storesql.FromMicros(created), storesql.FromMicros(updated)
	return &h, nil
}

// ListWebhooks returns the workspace's endpoints, oldest first.
func (w *Workspace) ListWebhooks(ctx context.Context) ([]*Webhook, error) {
	return queryAll(ctx, w.s, w.s.db, "list webhooks", scanWebhook,
		`SELECT `+webhookCols+` FROM webhooks WHERE workspace_id = $1 ORDER BY created_at, id`, w.id)
}

// GetWebhook returns one endpoint of the workspace. Returns ENOTFOUND.
func (w *Workspace) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	return w.getWebhook(ctx, w.s.db, id)
}

func (w *Workspace) getWebhook(ctx context.Context, q querier, id string) (*Webhook, error) {
	h, err := scanWebhook(q.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE workspace_id = $1 AND id = $2`, w.id, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhookNotFound(id)
	}
	if err != nil {
		return nil, w.s.storeErr("get webhook", err)
	}
	return h, nil
}

// CreateWebhook stores a new endpoint with a new secret and returns it with
// the secret (the only time it is shown). Returns EINVALID for unknown
// events or a bad description.
func (w *Workspace) CreateWebhook(ctx context.Context, in WebhookInput) (*Webhook, error) {
	events, err := checkEvents(in.Events)
	if err != nil {
		return nil, err
	}
	desc, err := checkDescription(in.Description)
	if err != nil {
		return nil, err
	}
	now := w.s.stamp()
	h := &Webhook{ID: agentkeys.NewID("wh"), URL: in.URL, Description: desc, Events: events, Enabled: true,
		CreatedAt: now, UpdatedAt: now, Secret: NewWebhookSecret()}
	sealed, err := agentkeys.Seal(w.s.root, []byte(h.Secret), webhookAAD(h.ID))
	if err != nil {
		return nil, err
	}
	ev, _ := json.Marshal(events)
	err = w.s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (id, workspace_id, url, description, events, secret_sealed, enabled, disabled_reason, failing_since, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 1, '', NULL, $7, $7)`, h.ID, w.id, h.URL, h.Description, string(ev), sealed, now.UnixMicro())
		return err
	})
	if err != nil {
		return nil, w.s.storeErr("create webhook", err)
	}
	return h, nil
}

// UpdateWebhook applies p. Returns ENOTFOUND or EINVALID; nothing is
// written then.
func (w *Workspace) UpdateWebhook(ctx context.Context, id string, p WebhookPatch) (*Webhook, error) {
	var out *Webhook
	err := w.s.withTx(ctx, func(tx *sql.Tx) error {
		h, err := w.getWebhook(ctx, tx, id)
		if err != nil {
			return err
		}
		if p.URL != nil {
			h.URL = *p.URL
		}
		if p.Description != nil {
			if h.Description, err = checkDescription(*p.Description); err != nil {
				return err
			}
		}
		if p.Events != nil {
			if h.Events, err = checkEvents(p.Events); err != nil {
				return err
			}
		}
		if p.Enabled != nil {
			h.Enabled = *p.Enabled
			if h.Enabled {
				h.DisabledReason, h.FailingSince = "", nil
			} else {
				h.DisabledReason = "disabled by a user"
			}
		}
		h.UpdatedAt = w.s.stamp()
		ev, _ := json.Marshal(h.Events)
		enabled := 0
		if h.Enabled {
			enabled = 1
		}
		var failing sql.NullInt64
		if h.FailingSince != nil {
			failing = sql.NullInt64{Int64: h.FailingSince.UnixMicro(), Valid: true}
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET url = $1, description = $2, events = $3, enabled = $4, disabled_reason = $5,
			failing_since = $6, updated_at = $7 WHERE workspace_id = $8 AND id = $9`,
			h.URL, h.Description, string(ev), enabled, h.DisabledReason, failing, h.UpdatedAt.UnixMicro(), w.id, id)
		out = h
		return err
	})
	if err != nil {
		return nil, w.s.storeErr("update webhook", err)
	}
	return out, nil
}

// DeleteWebhook deletes an endpoint and its deliveries. Returns ENOTFOUND.
func (w *Workspace) DeleteWebhook(ctx context.Context, id string) error {
	res, err := w.s.db.ExecContext(ctx, `DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2`, w.id, id)
	if err != nil {
		return w.s.storeErr("delete webhook", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return webhookNotFound(id)
	}
	return nil
}

// RotateWebhookSecret gives the endpoint a new secret and returns the
// endpoint with it (the only time it is shown). Deliveries from then on are
// signed with the new secret. Returns ENOTFOUND.
func (w *Workspace) RotateWebhookSecret(ctx context.Context, id string) (*Webhook, error) {
	h, err := w.GetWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	h.Secret = NewWebhookSecret()
	sealed, err := agentkeys.Seal(w.s.root, []byte(h.Secret), webhookAAD(h.ID))
	if err != nil {
		return nil, err
	}
	h.UpdatedAt = w.s.stamp()
	res, err := w.s.db.ExecContext(ctx, `UPDATE webhooks SET secret_sealed = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4`,
		sealed, h.UpdatedAt.UnixMicro(), w.id, id)
	if err != nil {
		return nil, w.s.storeErr("rotate webhook secret", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, webhookNotFound(id)
	}
	return h, nil
}

// ---- events ----

// eventBody is the payload exactly as the seed gives it.
type eventBody struct {
	ID          string `json:"id"`
	Event       string `json:"event"`
	WorkspaceID string `json:"workspaceId"`
	Timestamp   string `json:"timestamp"`
	Data        any    `json:"data"`
}

// raise writes an event and a pending delivery to every enabled endpoint of
// the workspace subscribed to it (only is set: to that endpoint alone),
// within tx. With a dedupe key, the event is raised only when the key is
// new, or older than every (0: never again); it reports whether it was
// raised.
func (s *Store) raise(ctx context.Context, tx *sql.Tx, wsID, event string, data any, dedupe string, every time.Duration, only string) (string, bool, error) {
	now := s.stamp()
	if dedupe != "" {
		cutoff := int64(math.MinInt64)
		if every > 0 {
			cutoff = now.Add(-every).UnixMicro()
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webhook_raised (key, workspace_id, raised_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET raised_at = excluded.raised_at WHERE webhook_raised.raised_at <= $4`,
			dedupe, wsID, now.UnixMicro(), cutoff)
		if err != nil {
			return "", false, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return "", false, nil
		}
	}
	id := agentkeys.NewID("evt")
	body, err := json.Marshal(eventBody{ID: id, Event: event, WorkspaceID: wsID, Timestamp: now.UTC().Format(time.RFC3339), Data: data})
	if err != nil {
		return "", false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_events (id, workspace_id, type, body, created_at) VALUES ($1, $2, $3, $4, $5)`,
		id, wsID, event, string(body), now.UnixMicro()); err != nil {
		return "", false, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, events FROM webhooks WHERE workspace_id = $1 AND enabled = 1`, wsID)
	if err != nil {
		return "", false, err
	}
	var targets []string
	for rows.Next() {
		var hid, events string
		if err := rows.Scan(&hid, &events); err != nil {
			rows.Close()
			return "", false, err
		}
		var subs []string
		_ = json.Unmarshal([]byte(events), &subs)
		if only == hid || only == "" && slices.Contains(subs, event) {
			targets = append(targets, hid)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", false, err
	}
	for _, hid := range targets {
		if err := insertDelivery(ctx, tx, wsID, hid, id, now); err != nil {
			return "", false, err
		}
	}
	return id, true, nil
}

func insertDelivery(ctx context.Context, tx *sql.Tx, wsID, webhookID, eventID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, workspace_id, webhook_id, event_id, status, attempts, next_attempt_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)`, agentkeys.NewID("whd"), wsID, webhookID, eventID, now.UnixMicro())
	return err
}

// SendTestEvent raises webhook.test to the endpoint alone and returns the
// event id. Returns ENOTFOUND.
func (w *Workspace) SendTestEvent(ctx context.Context, id string) (string, error) {
	var evt string
	err := w.s.withTx(ctx, func(tx *sql.Tx) error {
		h, err := w.getWebhook(ctx, tx, id)
		if err != nil {
			return err
		}
		evt, _, err = w.s.raise(ctx, tx, w.id, EventWebhookTest, map[string]any{"webhookId": h.ID, "message": "a test event from agentkeys"}, "", 0, h.ID)
		return err
	})
	return evt, w.s.storeErr("send test event", err)
}

// RaiseUsageLimitReached raises usage.limit_reached for the workspace once
// per period (a billing period's name, such as "2026-06"): later calls for
// the same period do nothing. data is the event's data (the limit, the
// count); it must hold no secret. It reports whether the event was raised.
// The plans and limits code calls it when a workspace reaches its limit.
func (s *Store) RaiseUsageLimitReached(ctx context.Context, workspaceID, period string, data map[string]any) (bool, error) {
	if strings.TrimSpace(period) == "" {
		return false, agentkeys.Errorf(agentkeys.EINVALID, "missing billing period")
	}
	d := map[string]any{"period": period}
	for k, v := range data {
		d[k] = v
	}
	var raised bool
	err := s.withTx(ctx, func(tx *sql.Tx) (err error) {
		_, raised, err = s.raise(ctx, tx, workspaceID, EventUsageLimitReached, d, EventUsageLimitReached+":"+workspaceID+":"+period, 0, "")
		return err
	})
	return raised, s.storeErr("raise usage.limit_reached", err)
}

// RaiseCredentialError raises credential.error for a credential whose
// target answered status (401 or 403) to an injected request, at most once
// per credential per CredentialErrorInterval (across replicas). It reports
// whether the event was raised.
func (s *Store) RaiseCredentialError(ctx context.Context, e *agentkeys.AuditEvent) (bool, error) {
	return s.raiseCredentialError(ctx, e.WorkspaceID, e.CredentialID, map[string]any{
		"credentialId": e.CredentialID, "credentialName": e.CredentialName, "status": e.Status, "host": e.Host,
		"agentId": e.AgentID, "agentName": e.AgentName, "requestId": e.RequestID,
	})
}

// ReasonOAuthRefreshRefused is credential.error's data.reason when the
// OAuth provider refused a credential's refresh token: the connection is
// broken until someone connects it again.
const ReasonOAuthRefreshRefused = "oauth_refresh_refused"

// RaiseOAuthRefreshRefused raises credential.error (data.reason
// ReasonOAuthRefreshRefused) for an OAUTH credential whose refresh token
// the provider refused, under the same once-per-CredentialErrorInterval
// rule as RaiseCredentialError. It reports whether the event was raised.
func (s *Store) RaiseOAuthRefreshRefused(ctx context.Context, workspaceID string, c *agentkeys.Credential) (bool, error) {
	return s.raiseCredentialError(ctx, workspaceID, c.ID, map[string]any{
		"credentialId": c.ID, "credentialName": c.Name, "reason": ReasonOAuthRefreshRefused,
	})
}

func (s *Store) raiseCredentialError(ctx context.Context, workspaceID, credentialID string, data map[string]any) (bool, error) {
	var raised bool
	err := s.withTx(ctx, func(tx *sql.Tx) (err error) {
		_, raised, err = s.raise(ctx, tx, workspaceID, EventCredentialError, data, EventCredentialError+":"+credentialID, CredentialErrorInterval, "")
		return err
	})
	return raised, s.storeErr("raise credential.error", err)
}

// credentialErrorHook is EndAudit's: a forwarded request the target
// answered 401 or 403 raises credential.error in the background (the proxy
// is never held up); a flood is one event an hour, checked in memory first.
func (s *Store) credentialErrorHook(e *agentkeys.AuditEvent) {
	if e.Decision != agentkeys.DecisionAllowed || (e.Status != 401 && e.Status != 403) || e.CredentialID == "" || e.WorkspaceID == "" {
		return
	}
	now := s.now()
	s.credErrMu.Lock()
	if s.credErrSeen == nil {
		s.credErrSeen = map[string]time.Time{}
	}
	if last, ok := s.credErrSeen[e.CredentialID]; ok && now.Sub(last) < CredentialErrorInterval {
		s.credErrMu.Unlock()
		return
	}
	s.credErrSeen[e.CredentialID] = now
	s.credErrMu.Unlock()
	ev := *e
	s.hooks.Add(1)
	go func() {
		defer s.hooks.Done()
		if _, err := s.RaiseCredentialError(context.Background(), &ev); err != nil {
			s.log.Warn("webhooks: credential.error not raised", "credential", ev.CredentialID, "error", agentkeys.ErrorMessage(err))
		}
	}()
}

// ScanExpiry raises credential.expiring_soon for every credential that
// entered its last ExpiringSoonWindow and credential.expired for every one
// that expired, each once per expiry (changing expiresAt re-arms both), in
// every workspace. Several replicas may scan at once: the dedupe key makes
// one of them raise it. Returns how many events it raised.
func (s *Store) ScanExpiry(ctx context.Context) (int, error) {
	now := s.now()
	// Credentials already told about are skipped here (the keys are the
	// dedupe keys raise uses), so a scan costs a transaction only for news.
	rows, err := s.db.QueryContext(ctx, `SELECT c.workspace_id, c.id, c.name, c.expires_at FROM credentials c
		WHERE c.expires_at IS NOT NULL AND c.expires_at <= $1
		AND NOT EXISTS (SELECT 1 FROM webhook_raised r WHERE r.key = 'credential.expired:' || c.id || ':' || c.expires_at)
		AND (c.expires_at <= $2 OR NOT EXISTS (SELECT 1 FROM webhook_raised r WHERE r.key = 'credential.expiring_soon:' || c.id || ':' || c.expires_at))`,
		now.Add(ExpiringSoonWindow).UnixMicro(), now.UnixMicro())
	if err != nil {
		return 0, s.storeErr("scan expiry", err)
	}
	type cand struct {
		ws, id, name string
		at           int64
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.ws, &c.id, &c.name, &c.at); err != nil {
			rows.Close()
			return 0, s.storeErr("scan expiry", err)
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, s.storeErr("scan expiry", err)
	}
	n := 0
	for _, c := range cands {
		at := storesql.FromMicros(c.at)
		event := EventCredentialExpiringSoon
		if !now.Before(at) {
			event = EventCredentialExpired
		}
		data := map[string]any{"credentialId": c.id, "credentialName": c.name, "expiresAt": at.UTC().Format(time.RFC3339)}
		var raised bool
		err := s.withTx(ctx, func(tx *sql.Tx) (err error) {
			_, raised, err = s.raise(ctx, tx, c.ws, event, data, fmt.Sprintf("%s:%s:%d", event, c.id, c.at), 0, "")
			return err
		})
		if err != nil {
			return n, s.storeErr("scan expiry", err)
		}
		if raised {
			n++
		}
	}
	return n, nil
}

// ---- deliveries ----

// Attempt is one try of a delivery.
type Attempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode"`
	DurationMS int64     `json:"durationMs"`
	Error      string    `json:"error,omitempty"`
}

// Delivery is one event to one endpoint, with its attempts.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"eventId"`
	Event         string     `json:"event"`
	Status        string     `json:"status"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	Attempts      []Attempt  `json:"attempts"`
}

// ListDeliveries returns the endpoint's deliveries, newest first (at most
// limit; 0: 100), each with its attempts. before, when set, is the id of a
// delivery of the endpoint: only deliveries older than it are returned (the
// next page). Returns ENOTFOUND for an unknown endpoint and EINVALID for a
// before that is not one of its deliveries.
func (w *Workspace) ListDeliveries(ctx context.Context, webhookID string, limit int, before string) ([]*Delivery, error) {
	if _, err := w.GetWebhook(ctx, webhookID); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	args := []any{w.id, webhookID}
	page := ""
	if before != "" {
		var at int64
		err := w.s.db.QueryRowContext(ctx, `SELECT created_at FROM webhook_deliveries WHERE workspace_id = $1 AND webhook_id = $2 AND id = $3`,
			w.id, webhookID, before).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, agentkeys.Errorf(agentkeys.EINVALID, "before=%q is not a delivery of webhook %q: page with the id of the last delivery you were given", before, webhookID)
		}
		if err != nil {
			return nil, w.s.storeErr("list deliveries", err)
		}
		args = append(args, at, before)
		page = ` AND (d.created_at < $3 OR (d.created_at = $3 AND d.id < $4))`
	}
	args = append(args, limit)
	rows, err := w.s.db.QueryContext(ctx, `SELECT d.id, d.event_id, e.type, d.status, d.next_attempt_at, d.created_at
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
		WHERE d.workspace_id = $1 AND d.webhook_id = $2`+page+` ORDER BY d.created_at DESC, d.id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, w.s.storeErr("list deliveries", err)
	}
	out := []*Delivery{}
	byID := map[string]*Delivery{}
	for rows.Next() {
		var d Delivery
		var next, created int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.Event, &d.Status, &next, &created); err != nil {
			rows.Close()
			return nil, w.s.storeErr("list deliveries", err)
		}
		d.CreatedAt = storesql.FromMicros(created)
		if d.Status == DeliveryPending {
			t := storesql.FromMicros(next)
			d.NextAttemptAt = &t
		}
		d.Attempts = []Attempt{}
		out = append(out, &d)
		byID[d.ID] = &d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, w.s.storeErr("list deliveries", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// The attempts of this page's deliveries only.
	ids := make([]any, len(out))
	marks := make([]string, len(out))
	for i, d := range out {
		ids[i], marks[i] = d.ID, "$"+strconv.Itoa(i+1)
	}
	arows, err := w.s.db.QueryContext(ctx, `SELECT delivery_id, attempt, at, status_code, duration_ms, error
		FROM webhook_attempts WHERE delivery_id IN (`+strings.Join(marks, ", ")+`) ORDER BY attempt`, ids...)
	if err != nil {
		return nil, w.s.storeErr("list deliveries", err)
	}
	defer arows.Close()
	for arows.Next() {
		var did string
		var a Attempt
		var at int64
		if err := arows.Scan(&did, &a.Attempt, &at, &a.StatusCode, &a.DurationMS, &a.Error); err != nil {
			return nil, w.s.storeErr("list deliveries", err)
		}
		a.At = storesql.FromMicros(at)
		if d := byID[did]; d != nil {
			d.Attempts = append(d.Attempts, a)
		}
	}
	return out, w.s.storeErr("list deliveries", arows.Err())
}

// Redeliver queues the delivery's event to its endpoint again, as a new
// delivery with fresh attempts (the same event id and body). Returns
// ENOTFOUND.
func (w *Workspace) Redeliver(ctx context.Context, webhookID, deliveryID string) (*Delivery, error) {
	var out *Delivery
	err := w.s.withTx(ctx, func(tx *sql.Tx) error {
		var eventID, event string
		err := tx.QueryRowContext(ctx, `SELECT d.event_id, e.type FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			WHERE d.workspace_id = $1 AND d.webhook_id = $2 AND d.id = $3`, w.id, webhookID, deliveryID).Scan(&eventID, &event)
		if errors.Is(err, sql.ErrNoRows) {
			return agentkeys.Errorf(agentkeys.ENOTFOUND, "no delivery %q of webhook %q: see `agentkeys webhooks deliveries %s`", deliveryID, webhookID, webhookID)
		}
		if err != nil {
			return err
		}
		now := w.s.stamp()
		id := agentkeys.NewID("whd")
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, workspace_id, webhook_id, event_id, status, attempts, next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)`, id, w.id, webhookID, eventID, now.UnixMicro()); err != nil {
			return err
		}
		out = &Delivery{ID: id, EventID: eventID, Event: event, Status: DeliveryPending, NextAttemptAt: &now, CreatedAt: now, Attempts: []Attempt{}}
		return nil
	})
	if err != nil {
		return nil, w.s.storeErr("redeliver", err)
	}
	return out, nil
}

// Claim is a leased delivery, ready to send: the endpoint's URL and secret,
// the event's body, and which attempt this is (1–4).
type Claim struct {
	DeliveryID  string
	LeaseID     string
	WebhookID   string
	WorkspaceID string
	URL         string
	Secret      string
	EventID     string
	Body        []byte
	Attempt     int
}

// ClaimDeliveries leases up to n due deliveries for lease, at most one per
// endpoint and none of an endpoint that already has one leased (per-endpoint
// concurrency 1, across replicas). On PostgreSQL rows are locked FOR UPDATE
// SKIP LOCKED, so replicas claiming at once take different rows; SQLite has
// one writer. A lease that runs out makes the delivery due again.
func (s *Store) ClaimDeliveries(ctx context.Context, n int, lease time.Duration) ([]*Claim, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []*Claim
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		now := s.now().UnixMicro()
		q := `SELECT d.id, d.webhook_id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.enabled = 1 AND (d.lease_until IS NULL OR d.lease_until < $1)
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o WHERE o.webhook_id = d.webhook_id AND o.status = 'pending' AND o.lease_until >= $1)
			ORDER BY d.next_attempt_at, d.id LIMIT $2`
		if s.dialect.Name == "postgres" {
			q += ` FOR UPDATE OF d SKIP LOCKED`
		}
		rows, err := tx.QueryContext(ctx, q, now, n*4)
		if err != nil {
			return err
		}
		type due struct{ id, webhook string }
		var dues []due
		seen := map[string]bool{}
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.id, &d.webhook); err != nil {
				rows.Close()
				return err
			}
			if !seen[d.webhook] && len(dues) < n {
				seen[d.webhook] = true
				dues = append(dues, d)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range dues {
			if s.dialect.Name == "postgres" {
				// The endpoint's row serialises claims of its deliveries:
				// another replica claiming for it now skips it, and one
				// that claimed just before is seen by the check below.
				var got string
				err := tx.QueryRowContext(ctx, `SELECT id FROM webhooks WHERE id = $1 FOR UPDATE SKIP LOCKED`, d.webhook).Scan(&got)
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
				if err != nil {
					return err
				}
				var busy int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending' AND lease_until >= $2`,
					d.webhook, now).Scan(&busy); err != nil {
					return err
				}
				if busy > 0 {
					continue
				}
			}
			c := &Claim{DeliveryID: d.id, LeaseID: agentkeys.NewID("lease")}
			var sealed []byte
			var body string
			var attempts int
			err := tx.QueryRowContext(ctx, `SELECT d.workspace_id, d.webhook_id, w.url, w.secret_sealed, d.event_id, e.body, d.attempts
				FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1`, d.id).
				Scan(&c.WorkspaceID, &c.WebhookID, &c.URL, &sealed, &c.EventID, &body, &attempts)
			if err != nil {
				return err
			}
			secret, err := agentkeys.Open(s.root, sealed, webhookAAD(c.WebhookID))
			if err != nil {
				return fmt.Errorf("webhook %s: secret does not open with the server key: %w", c.WebhookID, err)
			}
			c.Secret, c.Body, c.Attempt = string(secret), []byte(body), attempts+1
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET lease_id = $1, lease_until = $2 WHERE id = $3`,
				c.LeaseID, now+lease.Microseconds(), d.id); err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, s.storeErr("claim deliveries", err)
	}
	return out, nil
}

// AttemptResult is what sending a claim gave.
type AttemptResult struct {
	At         time.Time
	StatusCode int // 0: no answer
	Duration   time.Duration
	Error      string // "" on success; never holds a secret
	OK         bool
}

// FinishAttempt records the attempt of c and settles the delivery:
// succeeded, failed after its last attempt (backoff has one wait per retry:
// len(backoff)+1 attempts in all), or pending again after the next wait.
// An endpoint failing without a success for DisableAfter is disabled with
// the reason. A claim whose lease was taken over (it ran out) records
// nothing: the delivery was claimed again.
func (s *Store) FinishAttempt(ctx context.Context, c *Claim, r AttemptResult, backoff []time.Duration) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var lease sql.NullString
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT lease_id, status FROM webhook_deliveries WHERE id = $1`, c.DeliveryID).Scan(&lease, &status); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil // the endpoint was deleted meanwhile
			}
			return err
		}
		if lease.String != c.LeaseID || status != DeliveryPending {
			return nil
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (id, delivery_id, attempt, at, status_code, duration_ms, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, agentkeys.NewID("wha"), c.DeliveryID, c.Attempt, r.At.UnixMicro(), r.StatusCode,
			r.Duration.Milliseconds(), r.Error); err != nil {
			return err
		}
		if r.OK {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'succeeded', attempts = $1, lease_id = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3`,
				c.Attempt, now.UnixMicro(), c.DeliveryID); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = NULL WHERE id = $1`, c.WebhookID)
			return err
		}
		if c.Attempt > len(backoff) {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'failed', attempts = $1, lease_id = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3`,
				c.Attempt, now.UnixMicro(), c.DeliveryID); err != nil {
				return err
			}
		} else {
			next := now.Add(backoff[c.Attempt-1])
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = $1, next_attempt_at = $2, lease_id = NULL, lease_until = NULL, updated_at = $3 WHERE id = $4`,
				c.Attempt, next.UnixMicro(), now.UnixMicro(), c.DeliveryID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL`, now.UnixMicro(), c.WebhookID); err != nil {
			return err
		}
		reason := fmt.Sprintf("disabled after failing for %d days without a success (last error: %s); fix the endpoint and re-enable it with PATCH {\"enabled\": true}",
			int(DisableAfter.Hours()/24), r.Error)
		_, err := tx.ExecContext(ctx, `UPDATE webhooks SET enabled = 0, disabled_reason = $1 WHERE id = $2 AND enabled = 1 AND failing_since <= $3`,
			reason, c.WebhookID, now.Add(-DisableAfter).UnixMicro())
		return err
	})
	return s.storeErr("finish webhook attempt", err)
}
