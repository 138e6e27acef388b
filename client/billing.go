package client

import (
	"context"
	"net/http"

	"github.com/agentkeys/agentkeys"
)

var _ agentkeys.BillingService = (*Client)(nil)

// Billing implements agentkeys.BillingService: GET /api/v1/billing.
func (c *Client) Billing(ctx context.Context) (*agentkeys.BillingStatus, error) {
	var out struct {
		Billing *agentkeys.BillingStatus `json:"billing"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/billing", nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Billing == nil {
		return nil, agentkeys.Errorf(agentkeys.EINTERNAL, "the server at %s answered without billing", c.host)
	}
	return out.Billing, nil
}

// Checkout implements agentkeys.BillingService: POST
// /api/v1/billing/checkout.
func (c *Client) Checkout(ctx context.Context, plan string) (string, error) {
	return c.billingURL(ctx, "/api/v1/billing/checkout", map[string]string{"plan": plan})
}

// BillingPortal implements agentkeys.BillingService: POST
// /api/v1/billing/portal.
func (c *Client) BillingPortal(ctx context.Context) (string, error) {
	return c.billingURL(ctx, "/api/v1/billing/portal", nil)
}

func (c *Client) billingURL(ctx context.Context, path string, in any) (string, error) {
	var out struct {
		URL string `json:"url"`
	}
	if err := c.call(ctx, http.MethodPost, path, nil, in, &out); err != nil {
		return "", err
	}
	if out.URL == "" {
		return "", agentkeys.Errorf(agentkeys.EINTERNAL, "the server at %s answered without a URL", c.host)
	}
	return out.URL, nil
}
