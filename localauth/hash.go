package localauth

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/pbkdf2"
)

// Argon2id parameters of HashPassword: Caddy's defaults (those of `caddy
// hash-password --algorithm argon2id` in Caddy v2.11), so either tool's
// output works in both.
const (
	argon2idTime    = 1
	argon2idMemory  = 46 * 1024 // KiB
	argon2idThreads = 1
	argon2idKeyLen  = 32
	argon2idSaltLen = 16
)

// Bounds on the parameters a users file may ask for, so that a hostile or
// mistaken file cannot make one sign-in eat the machine. Each is well above
// what the tools that write these hashes use.
const (
	maxArgon2Memory  = 256 * 1024 // KiB: 256 MiB
	maxArgon2Time    = 16
	maxArgon2Threads = 16
	minArgon2KeyLen  = 16
	maxArgon2KeyLen  = 128
	minArgon2SaltLen = 8
	maxArgon2SaltLen = 64
	maxBcryptCost    = 16         // 2^16 rounds: seconds per check
	maxPBKDF2Iter    = 10_000_000 // Django 5.2 uses 1,000,000
	maxSaltLen       = 256        // pbkdf2 salts are text
	bcryptHashLen    = 60         // "$2b$10$" + 22 salt + 31 hash
	defaultBcrypt    = 10         // the dummy hash of an empty file
	dummyPassword    = "\x00"     // never a real password: login refuses NUL
)

// ErrUnknownHash is wrapped by the error for a password field that is no
// hash this package knows (a plaintext password, an unsupported
// algorithm).
var ErrUnknownHash = errors.New("unrecognised password hash")

// verifier checks a password against one stored hash.
type verifier interface {
	// verify reports whether password matches. It costs the same time
	// whether or not it does.
	verify(password string) bool
	// kind names the algorithm and the parameters that set its cost, so
	// that hashes of one kind cost the same to check.
	kind() string
	// dummy returns a verifier of the same kind and cost that no password
	// matches, for users that do not exist.
	dummy() (verifier, error)
}

// parseHash recognises a stored hash by its prefix and checks its
// parameters. It never hashes.
func parseHash(s string) (verifier, error) {
	switch {
	case s == "":
		return nil, errors.New("empty password hash")
	case strings.HasPrefix(s, "!"):
		// Django's unusable password (set_unusable_password): the
		// account exists but cannot sign in with a password.
		return unusable{}, nil
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s, false)
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "pbkdf2_sha256$"):
		return parsePBKDF2(s, "pbkdf2_sha256", sha256.New)
	case strings.HasPrefix(s, "pbkdf2_sha1$"):
		return parsePBKDF2(s, "pbkdf2_sha1", sha1.New)
	case strings.HasPrefix(s, "argon2$argon2id$"):
		// Django's Argon2PasswordHasher: "argon2" before a PHC string.
		return parseArgon2id(strings.TrimPrefix(s, "argon2"))
	case strings.HasPrefix(s, "bcrypt$$2"):
		// Django's BCryptPasswordHasher.
		return parseBcrypt(strings.TrimPrefix(s, "bcrypt$"), false)
	case strings.HasPrefix(s, "bcrypt_sha256$$2"):
		// Django's BCryptSHA256PasswordHasher: bcrypt of the hex SHA-256.
		return parseBcrypt(strings.TrimPrefix(s, "bcrypt_sha256$"), true)
	}
	if strings.HasPrefix(s, "$argon2") {
		alg, _, _ := strings.Cut(s[1:], "$")
		return nil, fmt.Errorf("%w: %s is not supported, use argon2id", ErrUnknownHash, alg)
	}
	if alg, _, ok := strings.Cut(s[1:], "$"); s[0] == '$' && ok && len(alg) <= 32 {
		return nil, fmt.Errorf("%w: unsupported algorithm %q (want bcrypt, argon2id or pbkdf2_sha256)", ErrUnknownHash, "$"+alg+"$")
	}
	if alg, _, ok := strings.Cut(s, "$"); ok && alg != "" && len(alg) <= 32 && !strings.ContainsAny(alg, " \t") {
		return nil, fmt.Errorf("%w: unsupported algorithm %q (want bcrypt, argon2id or pbkdf2_sha256)", ErrUnknownHash, alg)
	}
	return nil, fmt.Errorf("%w (a plaintext password? use `caddy adauth user passwd` or `caddy hash-password`)", ErrUnknownHash)
}

// unusable is Django's "!…" password: the user exists, no password works.
// It has no cost of its own: Authenticate checks the dummy hash instead.
type unusable struct{}

func (unusable) verify(string) bool       { return false }
func (unusable) kind() string             { return "" }
func (unusable) dummy() (verifier, error) { return unusable{}, nil }

// bcryptHash is a bcrypt hash; sha256 marks Django's bcrypt_sha256, which
// hashes the hex SHA-256 of the password.
type bcryptHash struct {
	hash   []byte
	cost   int
	sha256 bool
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func parseBcrypt(s string, sha bool) (verifier, error) {
	if len(s) != bcryptHashLen {
		return nil, fmt.Errorf("bcrypt hash: %d characters, want %d", len(s), bcryptHashLen)
	}
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("bcrypt hash: %w", err)
	}
	if cost > maxBcryptCost {
		return nil, fmt.Errorf("bcrypt hash: cost %d is above the limit of %d", cost, maxBcryptCost)
	}
	// "$2b$10$": the salt and hash follow the second '$' after the version.
	if strings.Trim(s[7:], bcryptAlphabet) != "" || s[6] != '$' {
		return nil, errors.New("bcrypt hash: invalid characters")
	}
	return bcryptHash{hash: []byte(s), cost: cost, sha256: sha}, nil
}

func (h bcryptHash) verify(password string) bool {
	if h.sha256 {
		sum := sha256.Sum256([]byte(password))
		password = hex.EncodeToString(sum[:])
	}
	return bcrypt.CompareHashAndPassword(h.hash, []byte(password)) == nil
}

func (h bcryptHash) kind() string { return "bcrypt cost=" + strconv.Itoa(h.cost) }

func (h bcryptHash) dummy() (verifier, error) {
	// bcrypt's salt has a checked format; making a real hash of a random
	// secret is the simplest way to get a valid one of this cost.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	b, err := bcrypt.GenerateFromPassword(secret, h.cost)
	if err != nil {
		return nil, fmt.Errorf("making the dummy bcrypt hash: %w", err)
	}
	return bcryptHash{hash: b, cost: h.cost}, nil
}

// argon2idHash is a PHC string as Caddy writes it:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<key>, salt and key
// in unpadded standard base64.
type argon2idHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseArgon2id(s string) (verifier, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errors.New("argon2id hash: want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("argon2id hash: version %q, want v=%d", parts[2], argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("argon2id hash: parameters %q, want m=…,t=…,p=…", parts[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return nil, fmt.Errorf("argon2id hash: parameters %q, want m=…,t=…,p=…", parts[3])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("argon2id hash: parameter %s: %w", params[i], err)
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case m < 1 || m > maxArgon2Memory:
		return nil, fmt.Errorf("argon2id hash: memory m=%d KiB outside 1..%d", m, maxArgon2Memory)
	case t < 1 || t > maxArgon2Time:
		return nil, fmt.Errorf("argon2id hash: passes t=%d outside 1..%d", t, maxArgon2Time)
	case p < 1 || p > maxArgon2Threads:
		return nil, fmt.Errorf("argon2id hash: threads p=%d outside 1..%d", p, maxArgon2Threads)
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil {
		return nil, fmt.Errorf("argon2id hash: salt: %w", err)
	}
	if len(salt) < minArgon2SaltLen || len(salt) > maxArgon2SaltLen {
		return nil, fmt.Errorf("argon2id hash: salt of %d bytes outside %d..%d", len(salt), minArgon2SaltLen, maxArgon2SaltLen)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil {
		return nil, fmt.Errorf("argon2id hash: key: %w", err)
	}
	if len(key) < minArgon2KeyLen || len(key) > maxArgon2KeyLen {
		return nil, fmt.Errorf("argon2id hash: key of %d bytes outside %d..%d", len(key), minArgon2KeyLen, maxArgon2KeyLen)
	}
	return argon2idHash{memory: uint32(m), time: uint32(t), threads: uint8(p), salt: salt, key: key}, nil
}

func (h argon2idHash) verify(password string) bool {
	k := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

func (h argon2idHash) kind() string {
	return fmt.Sprintf("argon2id m=%d,t=%d,p=%d,len=%d", h.memory, h.time, h.threads, len(h.key))
}

func (h argon2idHash) dummy() (verifier, error) {
	d := h
	d.salt, d.key = make([]byte, len(h.salt)), make([]byte, len(h.key))
	if _, err := rand.Read(d.salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(d.key); err != nil {
		return nil, err
	}
	return d, nil
}

func (h argon2idHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.memory, h.time, h.threads,
		base64.RawStdEncoding.EncodeToString(h.salt), base64.RawStdEncoding.EncodeToString(h.key))
}

// pbkdf2Hash is Django's <algorithm>$<iterations>$<salt>$<base64 hash>.
type pbkdf2Hash struct {
	alg  string
	h    func() hash.Hash
	iter int
	salt string
	key  []byte
}

func parsePBKDF2(s, alg string, h func() hash.Hash) (verifier, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 {
		return nil, fmt.Errorf("%s hash: want %s$<iterations>$<salt>$<hash>", alg, alg)
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > maxPBKDF2Iter {
		return nil, fmt.Errorf("%s hash: iterations %q outside 1..%d", alg, parts[1], maxPBKDF2Iter)
	}
	if parts[2] == "" || len(parts[2]) > maxSaltLen {
		return nil, fmt.Errorf("%s hash: salt empty or longer than %d", alg, maxSaltLen)
	}
	key, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil {
		return nil, fmt.Errorf("%s hash: %w", alg, err)
	}
	if size := h().Size(); len(key) != size {
		return nil, fmt.Errorf("%s hash: %d bytes, want %d", alg, len(key), size)
	}
	return pbkdf2Hash{alg: alg, h: h, iter: iter, salt: parts[2], key: key}, nil
}

func (p pbkdf2Hash) verify(password string) bool {
	k := pbkdf2.Key([]byte(password), []byte(p.salt), p.iter, len(p.key), p.h)
	return subtle.ConstantTimeCompare(k, p.key) == 1
}

func (p pbkdf2Hash) kind() string { return p.alg + " i=" + strconv.Itoa(p.iter) }

func (p pbkdf2Hash) dummy() (verifier, error) {
	d := p
	d.key = make([]byte, len(p.key))
	if _, err := rand.Read(d.key); err != nil {
		return nil, err
	}
	d.salt = rand.Text()[:12]
	return d, nil
}

// HashPassword hashes password for a users file: argon2id with Caddy's
// default parameters, in the PHC format `caddy hash-password --algorithm
// argon2id` prints, so the two are interchangeable.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	h := argon2idHash{memory: argon2idMemory, time: argon2idTime, threads: argon2idThreads,
		salt: make([]byte, argon2idSaltLen)}
	if _, err := rand.Read(h.salt); err != nil {
		return "", fmt.Errorf("making a salt: %w", err)
	}
	h.key = argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, argon2idKeyLen)
	return h.String(), nil
}
