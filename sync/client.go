package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agentkeys/agentkeys"
)

// Client calls a server's sync endpoints for one synced vault.
type Client struct {
	base, apiKey, vaultID string
	deviceToken           string
	http                  *http.Client
	requests              atomic.Int64
}

// NewClient returns a client of the sync endpoints at server (the
// `agentkeys serve` base URL) for vaultID, authenticated with the
// workspace's API key and, once registered, the device token. hc nil: a
// client with a 30-second timeout that follows no redirects.
func NewClient(server, apiKey, vaultID, deviceToken string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, agentkeys.Errorf(agentkeys.EINVALID, "--server must be the http(s) URL of an `agentkeys serve`, such as https://keys.example.com")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Client{base: u.String(), apiKey: apiKey, vaultID: vaultID, deviceToken: deviceToken, http: hc}, nil
}

// Requests is how many HTTP requests the client has made.
func (c *Client) Requests() int64 { return c.requests.Load() }

// do sends one request and decodes a 2xx answer (or, for push, a 409) into
// out. Error bodies become *agentkeys.Error with the server's code.
func (c *Client) do(ctx context.Context, method, path string, in, out any, okStatus ...int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/v1/sync/vaults/"+c.vaultID+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	if c.deviceToken != "" {
		req.Header.Set(HeaderDevice, c.deviceToken)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named below, once
		}
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "cannot reach the sync server at %s (%v): check --server and your network; local changes are kept and sync later", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "reading the sync server's answer: %v", err)
	}
	ok := resp.StatusCode/100 == 2
	for _, s := range okStatus {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		var eb struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Code != "" {
			return agentkeys.Errorf(eb.Code, "the sync server says: %s", eb.Error)
		}
		return agentkeys.Errorf(agentkeys.CodeForStatus(resp.StatusCode), "the sync server at %s answered %s: is it an `agentkeys serve` with sync?", c.base, resp.Status)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return agentkeys.Errorf(agentkeys.EUNAVAILABLE, "the sync server's answer is not what agentkeys expects (%v): is %s an `agentkeys serve`?", err, c.base)
	}
	return nil
}

// Register adds this device (label sealed by the caller) and keeps the
// device token for later calls.
func (c *Client) Register(ctx context.Context, label []byte) (*RegisterResponse, error) {
	var res RegisterResponse
	c.deviceToken = ""
	if err := c.do(ctx, "POST", "/devices", RegisterRequest{Label: label}, &res); err != nil {
		return nil, err
	}
	c.deviceToken = res.DeviceToken
	return &res, nil
}

// Devices lists the vault's devices.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var res DevicesResponse
	if err := c.do(ctx, "GET", "/devices", nil, &res); err != nil {
		return nil, err
	}
	return res.Devices, nil
}

// Revoke revokes a device of the vault.
func (c *Client) Revoke(ctx context.Context, deviceID string) error {
	return c.do(ctx, "DELETE", "/devices/"+url.PathEscape(deviceID), nil, nil)
}

// DeleteVault removes the vault and its records from the server.
func (c *Client) DeleteVault(ctx context.Context) error {
	return c.do(ctx, "DELETE", "", nil, nil)
}

// Pull returns one page of changes after since.
func (c *Client) Pull(ctx context.Context, since int64, limit int) (*PullResponse, error) {
	var res PullResponse
	q := "?since=" + strconv.FormatInt(since, 10)
	if limit > 0 {
		q += "&limit=" + strconv.Itoa(limit)
	}
	if err := c.do(ctx, "GET", "/changes"+q, nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Push sends a batch; a stale batch is not an error (see PushResponse).
func (c *Client) Push(ctx context.Context, req *PushRequest) (*PushResponse, error) {
	var res PushResponse
	if err := c.do(ctx, "POST", "/changes", req, &res, http.StatusConflict); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *Client) String() string { return fmt.Sprintf("sync client for %s", c.base) }
