package adauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Require{})
}

// Require answers 403 unless the signed-in user has at least one of the
// listed application groups. It reads the identity that the adauth handler
// before it set; on a request adauth let through unsigned (a public path) it
// also answers 403, never passes.
type Require struct {
	// Application groups, any one of which grants access.
	Groups []string `json:"groups"`

	pages *pages
}

// CaddyModule returns the Caddy module information.
func (Require) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.adauth_require",
		New: func() caddy.Module { return new(Require) },
	}
}

// Provision loads the page template.
func (rq *Require) Provision(caddy.Context) error {
	var err error
	rq.pages, err = loadPages("")
	return err
}

// Validate needs at least one group.
func (rq *Require) Validate() error {
	if len(rq.Groups) == 0 {
		return errors.New("adauth_require needs at least one group")
	}
	return nil
}

func (rq Require) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	ss := sessionFromRequest(r)
	if ss != nil {
		for _, want := range rq.Groups {
			for _, have := range ss.Groups {
				if strings.EqualFold(want, have) {
					return next.ServeHTTP(w, r)
				}
			}
		}
	}
	who := "You are not signed in"
	if ss != nil {
		who = fmt.Sprintf("You are signed in as %s", ss.ID)
	}
	rq.pages.message(w, r, http.StatusForbidden, "Access denied",
		who+", and this page needs membership of one of these groups: "+strings.Join(rq.Groups, ", ")+". Ask IT if you need access.")
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Require)(nil)
	_ caddy.Validator             = (*Require)(nil)
	_ caddyhttp.MiddlewareHandler = (*Require)(nil)
)
