package sync

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/agentkeys/agentkeys"
)

// HandlerFunc serves one sync call for the workspace the caller's API key
// selected (the server authenticates the key before calling it). An error
// is written by the server as its JSON error body.
type HandlerFunc func(w http.ResponseWriter, r *http.Request, workspaceID string) error

// Route is one sync endpoint for the server's route table.
type Route struct {
	Method, Path string
	Handler      HandlerFunc
}

// Handler is the server side of sync: the blob store's HTTP endpoints.
// Every call but device registration also needs the device's token in
// HeaderDevice; a revoked device's token is refused at once (403).
type Handler struct {
	store *Store
}

// NewHandler returns the endpoints over store.
func NewHandler(store *Store) *Handler { return &Handler{store: store} }

// Routes lists the endpoints, for the server to mount under its API-key
// authentication.
func (h *Handler) Routes() []Route {
	const v = "/api/v1/sync/vaults/{vault}"
	return []Route{
		{"POST", v + "/devices", h.register},
		{"GET", v + "/devices", h.devices},
		{"DELETE", v + "/devices/{device}", h.revoke},
		{"GET", v + "/changes", h.pull},
		{"POST", v + "/changes", h.push},
		{"DELETE", v, h.deleteVault},
	}
}

var vaultIDPattern = regexp.MustCompile(`^sv_[0-9a-f]{32}$`)

func vaultID(r *http.Request) (string, error) {
	id := r.PathValue("vault")
	if !vaultIDPattern.MatchString(id) {
		return "", agentkeys.Errorf(agentkeys.EINVALID, "malformed synced vault id in the path")
	}
	return id, nil
}

// device authenticates the device token of a call.
func (h *Handler) device(r *http.Request, wsID string) (vault, device string, err error) {
	if vault, err = vaultID(r); err != nil {
		return "", "", err
	}
	tok := r.Header.Get(HeaderDevice)
	if tok == "" {
		return "", "", agentkeys.Errorf(agentkeys.EUNAUTHORIZED, "missing device token: send %s", HeaderDevice)
	}
	device, err = h.store.Authenticate(r.Context(), wsID, vault, tok)
	return vault, device, err
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return agentkeys.Errorf(agentkeys.ETOOLARGE, "request body is larger than %d bytes: push smaller batches", mbe.Limit)
		}
		return agentkeys.Errorf(agentkeys.EINVALID, "malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return agentkeys.Errorf(agentkeys.EINVALID, "malformed JSON body: more than one value")
	}
	return nil
}

func reply(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request, wsID string) error {
	vault, err := vaultID(r)
	if err != nil {
		return err
	}
	var req RegisterRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := h.store.Register(r.Context(), wsID, vault, req.Label)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, res)
}

func (h *Handler) devices(w http.ResponseWriter, r *http.Request, wsID string) error {
	vault, _, err := h.device(r, wsID)
	if err != nil {
		return err
	}
	ds, err := h.store.Devices(r.Context(), wsID, vault)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, DevicesResponse{Devices: ds})
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, wsID string) error {
	vault, _, err := h.device(r, wsID)
	if err != nil {
		return err
	}
	if err := h.store.Revoke(r.Context(), wsID, vault, r.PathValue("device")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) pull(w http.ResponseWriter, r *http.Request, wsID string) error {
	vault, _, err := h.device(r, wsID)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	since, limit := int64(0), 0
	if s := q.Get("since"); s != "" {
		if since, err = strconv.ParseInt(s, 10, 64); err != nil || since < 0 {
			return agentkeys.Errorf(agentkeys.EINVALID, "since must be a sequence number (0 or more)")
		}
	}
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit <= 0 {
			return agentkeys.Errorf(agentkeys.EINVALID, "limit must be a positive number")
		}
	}
	res, err := h.store.Pull(r.Context(), wsID, vault, since, limit)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, res)
}

func (h *Handler) push(w http.ResponseWriter, r *http.Request, wsID string) error {
	vault, device, err := h.device(r, wsID)
	if err != nil {
		return err
	}
	var req PushRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := h.store.Push(r.Context(), wsID, vault, device, &req)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if len(res.Stale) > 0 {
		status = http.StatusConflict
	}
	return reply(w, status, res)
}

func (h *Handler) deleteVault(w http.ResponseWriter, r *http.Request, wsID string) error {
	vault, _, err := h.device(r, wsID)
	if err != nil {
		return err
	}
	if err := h.store.DeleteVault(r.Context(), wsID, vault); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
