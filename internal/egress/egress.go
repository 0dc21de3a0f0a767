// Package egress keeps paved from being used to reach what it should not (SSRF): URLs that
// users give it (http(s) repository clone URLs, alert and notification webhooks) are
// checked against allow and deny lists of CIDRs and host globs, and by default denied when
// they lead to loopback, link-local, private or shared address space or a cloud metadata
// service.
//
// The check that counts is made at dial time, on the IP address actually dialed (a
// net.Dialer Control), so a name that resolves to a public address when checked and to
// 169.254.169.254 when dialed (DNS rebinding) is still refused. CheckURL, for a clear error
// when a URL is registered, is advisory beside it.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"syscall"
	"time"
)

// ErrDenied: the destination is not allowed. The message names the rule and how to allow it.
var ErrDenied = errors.New("egress: destination not allowed")

// Defaults denied unless allowed: every range that is not the public internet, and the
// metadata services of the clouds.
var defaultDeny = []string{
	"0.0.0.0/8", "127.0.0.0/8", "::1/128", "::/128", // this host
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", // private
	"100.64.0.0/10",               // shared (carrier-grade NAT); also Alibaba's metadata
	"169.254.0.0/16", "fe80::/10", // link-local; AWS, GCP, Azure metadata at 169.254.169.254
	"fd00:ec2::254/128",             // AWS metadata over IPv6
	"192.0.0.0/24", "198.18.0.0/15", // protocol assignments, benchmarking
	"224.0.0.0/4", "ff00::/8", "240.0.0.0/4", // multicast, reserved
	"64:ff9b::/96", // NAT64: would reach any IPv4 above
}

var defaultDenyHosts = []string{"metadata.google.internal", "metadata", "instance-data", "*.internal"}

// Config is the allow and deny lists. Entries are CIDRs (10.0.0.0/8, 127.0.0.1/32, a bare
// IP) or host globs (*.corp.example.com, path.Match syntax, matched case-insensitively).
type Config struct {
	// Allow wins over every deny, default or configured: 127.0.0.1 for a demo, a private
	// Git server's host or range. Default: none.
	Allow []string
	// Deny is denied on top of the defaults. Default: none.
	Deny []string
	// DialTimeout bounds one connection attempt. Default 30 s.
	DialTimeout time.Duration
	// Resolver resolves names for CheckURL. Default net.DefaultResolver. (Dials resolve
	// with the dialer's own, and are checked on the address dialed whatever this says.)
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// Policy decides which destinations may be reached. Safe for concurrent use.
type Policy struct {
	allowNets, denyNets   []netip.Prefix
	allowHosts, denyHosts []string
	dialTimeout           time.Duration
	resolver              interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// New parses the lists; a bad entry is an error naming it.
func New(cfg Config) (*Policy, error) {
	p := &Policy{dialTimeout: cfg.DialTimeout, denyHosts: defaultDenyHosts, resolver: cfg.Resolver}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if p.dialTimeout <= 0 {
		p.dialTimeout = 30 * time.Second
	}
	for _, c := range defaultDeny {
		p.denyNets = append(p.denyNets, netip.MustParsePrefix(c))
	}
	for _, l := range []struct {
		name    string
		entries []string
		nets    *[]netip.Prefix
		hosts   *[]string
	}{{"allow", cfg.Allow, &p.allowNets, &p.allowHosts}, {"deny", cfg.Deny, &p.denyNets, &p.denyHosts}} {
		for _, e := range l.entries {
			e = strings.TrimSpace(e)
			if pre, err := netip.ParsePrefix(e); err == nil {
				*l.nets = append(*l.nets, pre.Masked())
				continue
			}
			if ip, err := netip.ParseAddr(e); err == nil {
				*l.nets = append(*l.nets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
				continue
			}
			if _, err := path.Match(e, ""); err != nil || e == "" || strings.ContainsAny(e, "/:") {
				return nil, fmt.Errorf("egress: %s entry %q: want a CIDR (10.0.0.0/8), an IP or a host glob (*.example.com)", l.name, e)
			}
			*l.hosts = append(*l.hosts, strings.ToLower(e))
		}
	}
	return p, nil
}

func matchHost(globs []string, host string) (string, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, g := range globs {
		if ok, _ := path.Match(g, host); ok {
			return g, true
		}
	}
	return "", false
}

// verdict on a host name alone: allowed outright, denied outright, or up to its addresses.
type verdict int

const (
	byAddress verdict = iota
	allowed
	denied
)

func (p *Policy) hostVerdict(host string) (verdict, error) {
	if g, ok := matchHost(p.allowHosts, host); ok && g != "" {
		return allowed, nil
	}
	if g, ok := matchHost(p.denyHosts, host); ok {
		return denied, fmt.Errorf("%w: host %s matches the deny rule %q", ErrDenied, host, g)
	}
	return byAddress, nil
}

// CheckIP says whether ip may be dialed; host is for the message.
func (p *Policy) CheckIP(host string, ip netip.Addr) error {
	ip = ip.Unmap()
	for _, n := range p.allowNets {
		if n.Contains(ip) {
			return nil
		}
	}
	for _, n := range p.denyNets {
		if n.Contains(ip) {
			return fmt.Errorf("%w: %s is %s, in the denied range %s (loopback, private, link-local and metadata ranges are denied by default); to reach it, allow it: --egress-allow %s",
				ErrDenied, host, ip, n, ip)
		}
	}
	return nil
}

// CheckURL checks a URL a user gives: http or https, a host, and (resolving it now) no
// address that is denied. The dialer checks again when the URL is used.
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %q is not a URL: %v", ErrDenied, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %s: only http and https URLs are fetched", ErrDenied, redact(u))
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: %s has no host", ErrDenied, redact(u))
	}
	v, err := p.hostVerdict(host)
	switch v {
	case allowed:
		return nil
	case denied:
		return err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckIP(host, ip)
	}
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("egress: %s: resolve %s: %w", redact(u), host, err)
	}
	for _, ip := range addrs {
		if err := p.CheckIP(host, ip); err != nil {
			return err
		}
	}
	return nil
}

func redact(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("xxxxx")
	return c.String()
}

// DialContext dials addr ("host:port") if the policy allows it: the host name against the
// host rules, then every address the dialer actually connects to against the address
// rules (net.Dialer.Control runs after resolution, before connect).
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("egress: dial %s: %w", addr, err)
	}
	v, err := p.hostVerdict(host)
	if v == denied {
		return nil, err
	}
	d := &net.Dialer{Timeout: p.dialTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		if v == allowed {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: dial %s: %v", ErrDenied, address, err)
		}
		return p.CheckIP(host, ap.Addr())
	}}
	return d.DialContext(ctx, network, addr)
}

// Client is an HTTP client that reaches only what the policy allows, redirects included
// (each one is dialed through the policy too), never through an environment proxy (which
// would do the dialing itself), within timeout.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           p.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          10,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("egress: more than 5 redirects")
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("%w: redirect to %s", ErrDenied, req.URL.Scheme)
		}
		return nil
	}}
}
