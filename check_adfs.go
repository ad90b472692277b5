package adauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-adauth/adauth/adfsauth"
)

func init() { registerSubcommand(newCheckADFSCmd) }

func newCheckADFSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check-adfs --config <Caddyfile>",
		Short: "Checks the AD FS / OpenID Connect provider of every adfs block",
		Long: `
Reads the adfs blocks of a config (a Caddyfile or JSON) and, for each,
fetches the provider's discovery document (or AD FS 2012 R2 federation
metadata) and signing keys exactly as a sign-in would, then compares the
provider's clock with this server's. It prints what an administrator needs
to register the relying party, and no secret.`,
		Args: cobra.NoArgs,
	}
	config := cmd.Flags().StringP("config", "c", "Caddyfile", "the config file")
	adapter := cmd.Flags().StringP("adapter", "a", "", "the config adapter (default: caddyfile for a file named Caddyfile*)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		raw, _, _, err := caddycmd.LoadConfig(*config, *adapter)
		if err != nil {
			return err
		}
		blocks, err := findADFSBlocks(raw)
		if err != nil {
			return err
		}
		if len(blocks) == 0 {
			return fmt.Errorf("%s has no adauth handler with an adfs block", *config)
		}
		failed := 0
		for i, b := range blocks {
			if len(blocks) > 1 {
				fmt.Fprintf(cmd.OutOrStdout(), "== adfs block %d of %d\n", i+1, len(blocks))
			}
			if err := checkADFS(cmd.Context(), cmd.OutOrStdout(), b); err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "FAIL  %v\n", err)
				failed++
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d adfs blocks failed", failed, len(blocks))
		}
		return nil
	}
	return cmd
}

// findADFSBlocks returns the adfs blocks of a JSON config.
func findADFSBlocks(raw []byte) ([]*ADFSConfig, error) {
	handlers, err := findHandlers(raw)
	if err != nil {
		return nil, err
	}
	var out []*ADFSConfig
	for _, h := range handlers {
		if h.ADFS != nil {
			out = append(out, h.ADFS)
		}
	}
	return out, nil
}

// checkADFS runs the checks for one block and prints each step.
func checkADFS(ctx context.Context, w io.Writer, c *ADFSConfig) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := c.newClient(caddy.NewReplacer())
	if err != nil {
		return err
	}
	target := c.Server
	if target == "" {
		target = c.Issuer
	}
	fmt.Fprintf(w, "      provider %s (client_id %s)\n", target, c.ClientID)
	d, err := client.Discover(ctx)
	if err != nil {
		var ie *adfsauth.IssuerError
		if errors.As(err, &ie) {
			return fmt.Errorf("discovery: the provider calls itself %q, not %q: check server/issuer", ie.Got, ie.Want)
		}
		return fmt.Errorf("discovery: %w", err)
	}
	if d.Legacy {
		fmt.Fprintln(w, "ok    AD FS 2012 R2 federation metadata (no OpenID Connect discovery)")
	} else {
		fmt.Fprintln(w, "ok    discovery")
	}
	fmt.Fprintf(w, "      authorize     %s\n      token         %s\n", d.AuthorizationEndpoint, d.TokenEndpoint)
	if d.EndSessionEndpoint != "" {
		fmt.Fprintf(w, "      sign-out      %s\n", d.EndSessionEndpoint)
	} else if c.SingleLogout {
		fmt.Fprintln(w, "WARN  single_logout is set but the provider has no end_session_endpoint")
	}
	fmt.Fprintf(w, "      token issuer  %s\n", d.ClaimsIssuer)
	fmt.Fprintf(w, "ok    %d signing key(s), algorithms %s: %s\n", len(d.KeyIDs), strings.Join(d.Algorithms, " "), strings.Join(d.KeyIDs, " "))

	// Clock skew: the provider's Date header against this clock.
	u := "https://" + c.Server + "/adfs/.well-known/openid-configuration"
	if c.Server == "" {
		u = strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration"
	}
	if d.Legacy {
		u = "https://" + c.Server + "/FederationMetadata/2007-06/FederationMetadata.xml"
	}
	leeway := time.Duration(c.Leeway)
	if leeway == 0 {
		leeway = 2 * time.Minute
	}
	if req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil); err == nil {
		before := time.Now()
		if resp, err := client.HTTPClient().Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mid := before.Add(time.Since(before) / 2)
			if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
				skew := t.Sub(mid).Round(time.Second)
				status := "ok  "
				if skew > leeway || -skew > leeway {
					status = "FAIL"
				} else if skew > leeway/2 || -skew > leeway/2 {
					status = "WARN"
				}
				fmt.Fprintf(w, "%s  clock skew %s (leeway %s; provider ahead when positive)\n", status, skew, leeway)
				if status == "FAIL" {
					return fmt.Errorf("the provider's clock differs by %s, more than leeway %s: tokens will be refused; fix NTP", skew, leeway)
				}
			} else {
				fmt.Fprintln(w, "WARN  the provider sent no Date header; clock skew not checked")
			}
		}
	}
	fmt.Fprintln(w, "      redirect URI to register: https://<each site name><path_prefix>/callback (default /adauth/callback)")
	return nil
}
