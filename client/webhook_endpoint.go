package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/agentkeys/agentkeys"
)

// webhooksPath is the REST collection of webhook endpoints.
const webhooksPath = "/api/v1/webhooks"

// WebhookEndpoint is a webhook endpoint of the workspace (GET
// /api/v1/webhooks/{id}). Secret (whsec_…) is set only in the answers of
// CreateWebhook and RotateWebhookSecret: the server shows it nowhere else.
type WebhookEndpoint struct {
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

// WebhookEndpointInput is what CreateWebhook sends.
type WebhookEndpointInput struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
}

// WebhookEndpointPatch is what UpdateWebhook sends: nil fields stay.
type WebhookEndpointPatch struct {
	URL         *string  `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Description *string  `json:"description,omitempty"`
	Enabled     *bool    `json:"enabled,omitempty"`
}

// WebhookAttempt is one try of a delivery: when, the endpoint's status (0:
// no answer), how long it took and what went wrong.
type WebhookAttempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode"`
	DurationMS int64     `json:"durationMs"`
	Error      string    `json:"error,omitempty"`
}

// WebhookDelivery is one event sent (or being sent) to one endpoint.
// Status is pending, succeeded or failed.
type WebhookDelivery struct {
	ID            string           `json:"id"`
	EventID       string           `json:"eventId"`
	Event         string           `json:"event"`
	Status        string           `json:"status"`
	NextAttemptAt *time.Time       `json:"nextAttemptAt,omitempty"`
	CreatedAt     time.Time        `json:"createdAt"`
	Attempts      []WebhookAttempt `json:"attempts"`
}

type webhookEnvelope struct {
	Webhook *WebhookEndpoint `json:"webhook"`
}

func webhookPath(id string, rest ...string) (string, error) {
	p, ok := pathID(id)
	if !ok {
		return "", agentkeys.Errorf(agentkeys.ENOTFOUND, "no webhook with id %q: see `agentkeys webhooks list`", id)
	}
	out := webhooksPath + "/" + p
	for _, r := range rest {
		out += "/" + r
	}
	return out, nil
}

// ListWebhooks returns the workspace's webhook endpoints (GET
// /api/v1/webhooks), without secrets.
func (c *Client) ListWebhooks(ctx context.Context) ([]*WebhookEndpoint, error) {
	var out struct {
		Webhooks []*WebhookEndpoint `json:"webhooks"`
	}
	if err := c.call(ctx, http.MethodGet, webhooksPath, nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Webhooks == nil {
		out.Webhooks = []*WebhookEndpoint{}
	}
	return out.Webhooks, nil
}

// CreateWebhook adds an endpoint (POST /api/v1/webhooks) and returns it
// with its secret, shown this once. The server refuses (EINVALID) a URL
// that is not https, or names a private, link-local or its own address.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookEndpointInput) (*WebhookEndpoint, error) {
	var out webhookEnvelope
	if err := c.call(ctx, http.MethodPost, webhooksPath, nil, &in, &out); err != nil {
		return nil, err
	}
	return out.Webhook, nil
}

// GetWebhook returns one endpoint; DisabledReason says why it is disabled.
func (c *Client) GetWebhook(ctx context.Context, id string) (*WebhookEndpoint, error) {
	p, err := webhookPath(id)
	if err != nil {
		return nil, err
	}
	var out webhookEnvelope
	if err := c.call(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Webhook, nil
}

// UpdateWebhook changes an endpoint's URL, events, description or enabled.
func (c *Client) UpdateWebhook(ctx context.Context, id string, p WebhookEndpointPatch) (*WebhookEndpoint, error) {
	path, err := webhookPath(id)
	if err != nil {
		return nil, err
	}
	var out webhookEnvelope
	if err := c.call(ctx, http.MethodPatch, path, nil, &p, &out); err != nil {
		return nil, err
	}
	return out.Webhook, nil
}

// DeleteWebhook removes an endpoint and its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	p, err := webhookPath(id)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, p, nil, nil, nil)
}

// RotateWebhookSecret gives the endpoint a new secret and returns it, shown
// this once; deliveries from then on are signed with it.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*WebhookEndpoint, error) {
	p, err := webhookPath(id, "rotate-secret")
	if err != nil {
		return nil, err
	}
	var out webhookEnvelope
	if err := c.call(ctx, http.MethodPost, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Webhook, nil
}

// TestWebhook queues a webhook.test event to the endpoint and returns its
// event id.
func (c *Client) TestWebhook(ctx context.Context, id string) (string, error) {
	p, err := webhookPath(id, "test")
	if err != nil {
		return "", err
	}
	var out struct {
		EventID string `json:"eventId"`
	}
	if err := c.call(ctx, http.MethodPost, p, nil, nil, &out); err != nil {
		return "", err
	}
	return out.EventID, nil
}

// ListWebhookDeliveries returns the endpoint's deliveries, newest first
// (limit 0: the server's default, 100), each with every attempt.
func (c *Client) ListWebhookDeliveries(ctx context.Context, id string, limit int) ([]*WebhookDelivery, error) {
	p, err := webhookPath(id, "deliveries")
	if err != nil {
		return nil, err
	}
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out struct {
		Deliveries []*WebhookDelivery `json:"deliveries"`
	}
	if err := c.call(ctx, http.MethodGet, p, q, nil, &out); err != nil {
		return nil, err
	}
	if out.Deliveries == nil {
		out.Deliveries = []*WebhookDelivery{}
	}
	return out.Deliveries, nil
}

// RedeliverWebhook queues a delivery's event (same id and body) to the
// endpoint again and returns the new delivery.
func (c *Client) RedeliverWebhook(ctx context.Context, id, deliveryID string) (*WebhookDelivery, error) {
	d, ok := pathID(deliveryID)
	if !ok {
		return nil, agentkeys.Errorf(agentkeys.ENOTFOUND, "no delivery %q: see `agentkeys webhooks deliveries %s`", deliveryID, id)
	}
	p, err := webhookPath(id, "deliveries", d, "redeliver")
	if err != nil {
		return nil, err
	}
	var out struct {
		Delivery *WebhookDelivery `json:"delivery"`
	}
	if err := c.call(ctx, http.MethodPost, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Delivery, nil
}
