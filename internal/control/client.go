package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/director-lb/director/internal/routing"
)

// Client talks to a daemon's control socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{path: path, hc: &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		},
		Timeout: maxWait + 5*time.Second,
	}}
}

// ErrNoDaemon means nothing listens on the socket.
var ErrNoDaemon = errors.New("no director daemon is running")

func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := "http://director" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (no socket at %s)", ErrNoDaemon, c.path)
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("control socket %s: permission denied (run as root)", c.path)
		}
		return fmt.Errorf("control socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("control socket: %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*rawBody); ok {
		*raw = body
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("control socket: bad reply: %w", err)
	}
	return nil
}

// State fetches the daemon's state.
func (c *Client) State(ctx context.Context) (State, error) {
	var s State
	err := c.do(ctx, http.MethodGet, "/v1/state", nil, &s)
	return s, err
}

// Failback asks the daemon to make this node master of instance ("" = all).
func (c *Client) Failback(ctx context.Context, instance string) error {
	return c.do(ctx, http.MethodPost, "/v1/failback", url.Values{"instance": {instance}}, nil)
}

// Reload asks the daemon to re-read its configuration.
func (c *Client) Reload(ctx context.Context, dryRun bool) (ReloadResult, error) {
	var r ReloadResult
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "1")
	}
	err := c.do(ctx, http.MethodPost, "/v1/reload", q, &r)
	return r, err
}

// RunningConfig fetches the configuration in force, as YAML.
func (c *Client) RunningConfig(ctx context.Context) ([]byte, error) {
	var raw rawBody
	err := c.do(ctx, http.MethodGet, "/v1/config", nil, &raw)
	return raw, err
}

// rawBody takes a reply as it is, not as JSON.
type rawBody []byte

// RealServer asks the daemon to drain, disable, enable or re-weight a real server.
func (c *Client) RealServer(ctx context.Context, target, action string, weight int) error {
	q := url.Values{"target": {target}, "action": {action}}
	if action == "weight" {
		q.Set("weight", strconv.Itoa(weight))
	}
	return c.do(ctx, http.MethodPost, "/v1/realserver", q, nil)
}

// Failover asks the daemon to hand instance ("" = all) to the peer.
func (c *Client) Failover(ctx context.Context, instance string) error {
	return c.do(ctx, http.MethodPost, "/v1/failover", url.Values{"instance": {instance}}, nil)
}

// DrainNode asks the daemon to withdraw (or de-prefer) this node's routes;
// the progress is then in State's Routing.
func (c *Client) DrainNode(ctx context.Context) (routing.DrainProgress, error) {
	var p routing.DrainProgress
	err := c.do(ctx, http.MethodPost, "/v1/node/drain", nil, &p)
	return p, err
}

// UndrainNode asks the daemon to announce this node's routes again.
func (c *Client) UndrainNode(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/node/undrain", nil, nil)
}
