package adfsauth

import (
	"context"

	"github.com/caddy-adauth/adauth/groups"
)

// VerifyForTest verifies a claims token (the access token for AD FS) the
// way Exchange does and reads the identity from it.
func VerifyForTest(c *Client, ctx context.Context, raw string) (groups.Identity, error) {
	p, err := c.provider(ctx)
	if err != nil {
		return groups.Identity{}, err
	}
	claims, err := c.verify(ctx, p, raw, p.claimsIssuer, c.cfg.Audience, "", false)
	if err != nil {
		return groups.Identity{}, err
	}
	return c.identity(claims)
}

// ParseMetadataForTest exposes the federation metadata parser to fuzzing.
func ParseMetadataForTest(b []byte) (string, error) {
	md, err := parseMetadata(b)
	if err != nil {
		return "", err
	}
	return md.entityID, nil
}
