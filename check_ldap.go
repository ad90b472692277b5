package adauth

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/go-ldap/ldap/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddy-adauth/adauth/groups"
	"github.com/caddy-adauth/adauth/ldapauth"
)

func init() { registerSubcommand(newCheckLDAPCmd) }

func newCheckLDAPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check-ldap --config <Caddyfile> [--user <name>] [-v]",
		Short: "Checks the directory connection of every ldap block",
		Long: `
Reads the ldap blocks of a config (a Caddyfile or JSON) and, for each
domain controller: resolves its name, connects, shows its TLS certificate
chain and whether it is trusted, and binds the service account. With
--user it finds that account, lists its groups, and asks for its password
(not echoed) to test a sign-in exactly as the login page would. -v prints
every LDAP step. No secret is ever printed.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
	}
	config := cmd.Flags().StringP("config", "c", "Caddyfile", "the config file")
	adapter := cmd.Flags().StringP("adapter", "a", "", "the config adapter (default: caddyfile for a file named Caddyfile*)")
	user := cmd.Flags().StringP("user", "u", "", "an account to look up and test a sign-in with")
	verbose := cmd.Flags().BoolP("verbose", "v", false, "print the LDAP trace")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		raw, _, _, err := caddycmd.LoadConfig(*config, *adapter)
		if err != nil {
			return err
		}
		blocks, err := findLDAPBlocks(raw)
		if err != nil {
			return err
		}
		if len(blocks) == 0 {
			return fmt.Errorf("%s has no adauth handler with an ldap block", *config)
		}
		out := cmd.OutOrStdout()
		password := ""
		if *user != "" {
			if password, err = readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), *user); err != nil {
				return err
			}
		}
		failed := 0
		for i, b := range blocks {
			if len(blocks) > 1 {
				fmt.Fprintf(out, "== ldap block %d of %d\n", i+1, len(blocks))
			}
			failed += checkLDAP(cmd.Context(), out, b, *user, password, *verbose)
		}
		if failed > 0 {
			return fmt.Errorf("%d check(s) failed", failed)
		}
		fmt.Fprintln(out, "all checks passed")
		return nil
	}
	return cmd
}

// readPassword asks for a password without echo on a terminal, or reads a
// line from in otherwise (scripts, tests).
func readPassword(in io.Reader, prompt io.Writer, user string) (string, error) {
	fmt.Fprintf(prompt, "password for %s: ", user)
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		return string(b), err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// ldapBlock is one adauth handler's ldap block and the group rules that
// apply to its users.
type ldapBlock struct {
	ldap   *LDAPConfig
	mapper *groups.Mapper
}

// findLDAPBlocks returns the ldap blocks of a JSON config, each with its
// handler's group rules.
func findLDAPBlocks(raw []byte) ([]ldapBlock, error) {
	handlers, err := findHandlers(raw)
	if err != nil {
		return nil, err
	}
	var out []ldapBlock
	for _, h := range handlers {
		if h.LDAP == nil {
			continue
		}
		m := groups.PassThrough()
		if h.Groups != nil {
			if m, err = h.Groups.Compile(); err != nil {
				return nil, err
			}
		}
		out = append(out, ldapBlock{ldap: h.LDAP, mapper: m})
	}
	return out, nil
}

// checkLDAP checks one block, DC by DC, and returns the number of failures.
func checkLDAP(ctx context.Context, w io.Writer, blk ldapBlock, user, password string, verbose bool) int {
	c := blk.ldap
	if ctx == nil {
		ctx = context.Background()
	}
	fail := func(format string, args ...any) { fmt.Fprintf(w, "FAIL  "+format+"\n", args...) }
	cfg, err := c.backendConfig(caddy.NewReplacer())
	if err != nil {
		fail("%v", err)
		return 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = ldapauth.DefaultTimeout
	}
	flavor := cfg.Flavor
	if flavor == "" {
		flavor = ldapauth.FlavorAD
	}
	fmt.Fprintf(w, "      flavor %s, base_dn %q", flavor, cfg.BaseDN)
	if cfg.BindDN != "" {
		fmt.Fprintf(w, ", bind_dn %q (bind_password set)", cfg.BindDN)
	} else {
		fmt.Fprint(w, ", no bind_dn: users bind as themselves")
	}
	fmt.Fprintln(w)
	if cfg.InsecureSkipVerify {
		fmt.Fprintln(w, "WARN  tls_insecure_skip_verify is on: certificates are not checked")
	}
	if cfg.AllowPlaintext {
		fmt.Fprintln(w, "WARN  insecure_plaintext is on: passwords may cross the network in clear text")
	}
	if b, err := ldapauth.New(cfg); err != nil { // the whole block, before any DC
		fail("%v", err)
		return 1
	} else {
		_ = b.Close()
	}

	urls := cfg.URLs
	if cfg.SRV != "" {
		sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		_, addrs, err := net.DefaultResolver.LookupSRV(sctx, "ldap", "tcp", cfg.SRV)
		cancel()
		if err != nil {
			fail("SRV _ldap._tcp.%s: %v", cfg.SRV, err)
			return 1
		}
		sort.SliceStable(addrs, func(i, j int) bool {
			if addrs[i].Priority != addrs[j].Priority {
				return addrs[i].Priority < addrs[j].Priority
			}
			return addrs[i].Weight > addrs[j].Weight
		})
		fmt.Fprintf(w, "ok    SRV _ldap._tcp.%s: %d record(s)\n", cfg.SRV, len(addrs))
		for _, a := range addrs {
			host := strings.TrimSuffix(a.Target, ".")
			u := "ldaps://" + net.JoinHostPort(host, "636")
			if cfg.StartTLS {
				u = "ldap://" + net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
			}
			fmt.Fprintf(w, "      priority %d weight %d -> %s\n", a.Priority, a.Weight, u)
			urls = append(urls, u)
		}
	}

	failures := 0
	for _, u := range urls {
		fmt.Fprintf(w, "-- %s\n", u)
		failures += checkDC(ctx, w, cfg, blk.mapper, u, user, password, verbose)
	}
	return failures
}

func checkDC(ctx context.Context, w io.Writer, cfg ldapauth.Config, mapper *groups.Mapper, rawURL, user, password string, verbose bool) int {
	fail := func(format string, args ...any) int { fmt.Fprintf(w, "FAIL  "+format+"\n", args...); return 1 }
	pu, err := url.Parse(rawURL)
	if err != nil {
		return fail("url: %v", err)
	}
	host := pu.Hostname()
	if net.ParseIP(host) == nil {
		rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		addrs, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil {
			return fail("resolve %s: %v", host, err)
		}
		fmt.Fprintf(w, "ok    %s resolves to %s\n", host, strings.Join(addrs, ", "))
	}
	if pu.Scheme == "ldaps" || cfg.StartTLS {
		if n := probeTLS(ctx, w, cfg, pu); n > 0 {
			return n
		}
	} else {
		fmt.Fprintln(w, "WARN  plain LDAP without TLS")
	}

	one := cfg
	one.URLs, one.SRV = []string{rawURL}, ""
	one.Cache = 0
	if verbose {
		one.Trace = func(format string, args ...any) { fmt.Fprintf(w, "      · "+format+"\n", args...) }
	}
	b, err := ldapauth.New(one)
	if err != nil {
		return fail("%v", err)
	}
	defer b.Close()
	cctx, cancel := context.WithTimeout(ctx, 3*cfg.Timeout)
	defer cancel()
	start := time.Now()
	if err := b.Check(cctx); err != nil {
		return fail("%v", err)
	}
	if cfg.BindDN != "" {
		fmt.Fprintf(w, "ok    service account bound (%v)\n", time.Since(start).Round(time.Millisecond))
	} else {
		fmt.Fprintf(w, "ok    connected (%v)\n", time.Since(start).Round(time.Millisecond))
	}
	if user == "" {
		return 0
	}
	failures := 0
	if cfg.BindDN != "" {
		id, err := b.FindUser(cctx, user)
		if err != nil {
			failures += fail("find %s: %v", user, err)
		} else {
			fmt.Fprintf(w, "ok    found %s: id %q, email %q, name %q\n", id.DN, id.ID, id.Email, id.Name)
			fmt.Fprintf(w, "      %d group(s):\n", len(id.Groups))
			for _, g := range id.Groups {
				fmt.Fprintf(w, "        %-30s %s\n", g.Name, g.DN)
			}
			printMapped(w, mapper, id.Groups)
		}
	}
	start = time.Now()
	id, ok, err := b.Authenticate(cctx, user, password)
	took := time.Since(start).Round(time.Millisecond)
	var ae *ldapauth.AccountError
	switch {
	case ok:
		fmt.Fprintf(w, "ok    sign-in as %s succeeded (%v): id %q, %d group(s)\n", user, took, id.ID, len(id.Groups))
		if cfg.BindDN == "" {
			for _, g := range id.Groups {
				fmt.Fprintf(w, "        %-30s %s\n", g.Name, g.DN)
			}
			printMapped(w, mapper, id.Groups)
		}
	case errors.As(err, &ae):
		failures += fail("sign-in as %s: the password is right but the account may not sign in: %s (AD code %s)\n      the user would read: %s",
			user, ae.State, ae.Code, ae.UserMessage())
	case err != nil:
		failures += fail("sign-in as %s: %v", user, err)
	default:
		failures += fail("sign-in as %s: wrong password or no such user (the user would read \"Incorrect username or password\")", user)
	}
	return failures
}

// printMapped shows what the site's group rules make of a user's
// directory groups: the application groups, or the refusal the user would
// meet.
func printMapped(w io.Writer, mapper *groups.Mapper, dir []groups.Group) {
	apps, err := mapper.Directory(dir)
	if err != nil {
		fmt.Fprintf(w, "WARN  the groups rules refuse this user: %v\n", err)
		return
	}
	fmt.Fprintf(w, "      application groups (after the groups rules): %s\n", strings.Join(apps, ", "))
}

// probeTLS connects, prints the certificate chain and verifies it as a
// sign-in would, in plain words when it fails.
func probeTLS(ctx context.Context, w io.Writer, cfg ldapauth.Config, pu *url.URL) int {
	fail := func(format string, args ...any) int { fmt.Fprintf(w, "FAIL  "+format+"\n", args...); return 1 }
	host := pu.Hostname()
	port := pu.Port()
	if port == "" {
		port = "636"
		if pu.Scheme == "ldap" {
			port = "389"
		}
	}
	var chain []*x509.Certificate
	var version uint16
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         host,
		InsecureSkipVerify: true, //nolint:gosec // the chain is verified below, to report rather than only refuse
		VerifyConnection: func(cs tls.ConnectionState) error {
			chain, version = cs.PeerCertificates, cs.Version
			return nil
		},
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	raw, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fail("connect %s: %v", net.JoinHostPort(host, port), err)
	}
	defer raw.Close()
	fmt.Fprintf(w, "ok    TCP connect to %s\n", raw.RemoteAddr())
	if pu.Scheme == "ldaps" {
		if err := tls.Client(raw, conf).HandshakeContext(dctx); err != nil {
			return fail("TLS handshake: %v", err)
		}
	} else {
		dl, _ := dctx.Deadline()
		_ = raw.SetDeadline(dl)
		lc := ldap.NewConn(raw, false)
		lc.Start()
		defer lc.Close()
		if err := lc.StartTLS(conf); err != nil {
			return fail("StartTLS: %v", err)
		}
	}
	fmt.Fprintf(w, "ok    TLS %s, certificate chain:\n", tls.VersionName(version))
	now := time.Now()
	for i, c := range chain {
		left := fmt.Sprintf("in %d days", int(c.NotAfter.Sub(now).Hours()/24))
		if now.After(c.NotAfter) {
			left = "EXPIRED"
		}
		fmt.Fprintf(w, "        %d: %s\n           issuer %s, expires %s (%s)\n", i, c.Subject, c.Issuer,
			c.NotAfter.UTC().Format(time.RFC3339), left)
		if i == 0 {
			var names []string
			names = append(names, c.DNSNames...)
			for _, ip := range c.IPAddresses {
				names = append(names, ip.String())
			}
			if len(names) > 8 {
				names = append(names[:8], fmt.Sprintf("... (%d names)", len(names)))
			}
			fmt.Fprintf(w, "           names %s\n", strings.Join(names, ", "))
		}
	}
	if len(chain) == 0 {
		return fail("the DC sent no certificate")
	}
	if cfg.InsecureSkipVerify {
		fmt.Fprintln(w, "WARN  certificate not verified (tls_insecure_skip_verify)")
		return 0
	}
	opts := x509.VerifyOptions{DNSName: host, Intermediates: x509.NewCertPool()}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return fail("ca_file: %v", err)
		}
		opts.Roots = x509.NewCertPool()
		if !opts.Roots.AppendCertsFromPEM(pem) {
			return fail("ca_file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return fail("certificate not trusted: %s\n      (%v)", ldapauth.ExplainTLS(err), err)
	}
	from := "the system roots"
	if cfg.CAFile != "" {
		from = cfg.CAFile
	}
	fmt.Fprintf(w, "ok    certificate valid for %s, trusted through %s\n", host, from)
	return 0
}
