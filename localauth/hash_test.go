package localauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Fixtures made by other tools, so these tests check compatibility and not
// only that the package agrees with itself.
const (
	// caddy hash-password --algorithm argon2id --plaintext 'correct horse' --argon2id-memory 64
	// (Caddy v2.11.9).
	caddyArgon2idLow = "$argon2id$v=19$m=64,t=1,p=1$PQQeh6JQTzn1rtba4fZcnQ$c/9CGcwLdqP+9JUO9D5lY4f63gVGV5Bh8f9UpTxk4t8"
	// Caddy's own Argon2idHash.FakeHash: `caddy hash-password --plaintext
	// antitiming --algorithm argon2id`, Caddy's default parameters.
	caddyArgon2idDefault = "$argon2id$v=19$m=47104,t=1,p=1$P2nzckEdTZ3bxCiBCkRTyA$xQL3Z32eo5jKl7u5tcIsnEKObYiyNZQQf5/4sAau6Pg"
	// HashPassword("interop pw"), which Caddy v2.11.9's
	// caddyauth.Argon2idHash.Compare accepts (and refuses for "wrong").
	oursCheckedByCaddy = "$argon2id$v=19$m=47104,t=1,p=1$Ur8TER/LdSKOsIwe7NGw7Q$rD9uNWHoImEWovmXDiTIpEUo8YeQxP4OyxhezgXEhjQ"
	// Django's format ("%s$%d$%s$%s" % (algorithm, iterations, salt,
	// b64encode(hash))), computed with Python's hashlib.pbkdf2_hmac.
	djangoSHA256        = "pbkdf2_sha256$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso="      // correct horse
	djangoSHA256Unicode = "pbkdf2_sha256$1000$AbCdEfGh1234$yp9VkEFApJAlmjufHYRJOif/s2YT1iuCeRS7Jptf14s=" // Sécurité!
	djangoSHA1          = "pbkdf2_sha1$1000$seasalt$ljleU4wBmTtz/MoG5YTwxpM0d7I="                        // lètmein
)

// lowBcrypt makes a cheap bcrypt hash of password for tests.
func lowBcrypt(t testing.TB, password string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerify(t *testing.T) {
	bc := lowBcrypt(t, "correct horse") // $2a$04$…
	sum := sha256.Sum256([]byte("correct horse"))
	bcSHA := lowBcrypt(t, hex.EncodeToString(sum[:]))
	tests := []struct {
		name, hash, right string
	}{
		{"bcrypt 2a", bc, "correct horse"},
		{"bcrypt 2b", "$2b$" + bc[4:], "correct horse"},
		{"bcrypt 2y", "$2y$" + bc[4:], "correct horse"},
		{"argon2id caddy low memory", caddyArgon2idLow, "correct horse"},
		{"argon2id caddy defaults", caddyArgon2idDefault, "antitiming"},
		{"argon2id ours, as caddy checks it", oursCheckedByCaddy, "interop pw"},
		{"pbkdf2_sha256", djangoSHA256, "correct horse"},
		{"pbkdf2_sha256 unicode", djangoSHA256Unicode, "Sécurité!"},
		{"pbkdf2_sha1", djangoSHA1, "lètmein"},
		{"django argon2", "argon2" + caddyArgon2idLow, "correct horse"},
		{"django bcrypt", "bcrypt$" + bc, "correct horse"},
		{"django bcrypt_sha256", "bcrypt_sha256$" + bcSHA, "correct horse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseHash(tt.hash)
			if err != nil {
				t.Fatalf("parseHash: %v", err)
			}
			if !v.verify(tt.right) {
				t.Error("right password refused")
			}
			for _, wrong := range []string{"", "x", tt.right + " ", strings.ToUpper(tt.right)} {
				if v.verify(wrong) {
					t.Errorf("wrong password %q accepted", wrong)
				}
			}
			if v.kind() == "" {
				t.Error("no kind")
			}
			d, err := v.dummy()
			if err != nil {
				t.Fatalf("dummy: %v", err)
			}
			if d.kind() != v.kind() {
				t.Errorf("dummy kind %q, want %q", d.kind(), v.kind())
			}
			if d.verify(tt.right) {
				t.Error("dummy accepted the password")
			}
		})
	}
}

func TestUnusable(t *testing.T) {
	for _, h := range []string{"!", "!Wq3cN0dGk8sR1uY5zTb7xLm2pVe9hJa4fQ6oKi0S"} {
		v, err := parseHash(h)
		if err != nil {
			t.Fatalf("parseHash(%q): %v", h, err)
		}
		for _, pw := range []string{"", "!", h, h[1:]} {
			if v.verify(pw) {
				t.Errorf("%q accepted %q", h, pw)
			}
		}
	}
}

func TestParseHashErrors(t *testing.T) {
	bc := lowBcrypt(t, "x")
	b64 := base64.RawStdEncoding.EncodeToString
	salt, key := b64(make([]byte, 16)), b64(make([]byte, 32))
	argon := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	tests := []struct {
		name, hash, want string
	}{
		{"empty", "", "empty password hash"},
		{"plaintext", "hunter2", "plaintext"},
		{"plaintext with spaces", "correct horse $ battery", "plaintext"},
		{"md5 django", "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99", `unsupported algorithm "md5"`},
		{"sha512 crypt", "$6$rounds=5000$salt$hash", `unsupported algorithm "$6$"`},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, "argon2i is not supported"},
		{"bcrypt short", bc[:59], "59 characters"},
		{"bcrypt long", bc + "x", "61 characters"},
		{"bcrypt cost 3", "$2a$03$" + bc[7:], "cost"},
		{"bcrypt cost 17", "$2a$17$" + bc[7:], "above the limit"},
		{"bcrypt bad char", bc[:20] + "!" + bc[21:], "invalid characters"},
		{"bcrypt bad cost", "$2a$x1$" + bc[7:], "bcrypt hash"},
		{"argon2id parts", "$argon2id$v=19$m=64,t=1,p=1$" + salt, "want $argon2id$"},
		{"argon2id version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, "version"},
		{"argon2id order", argon("t=1,m=64,p=1"), "want m=…,t=…,p=…"},
		{"argon2id two params", argon("m=64,t=1"), "want m=…,t=…,p=…"},
		{"argon2id not a number", argon("m=x,t=1,p=1"), "parameter m=x"},
		{"argon2id memory 0", argon("m=0,t=1,p=1"), "memory"},
		{"argon2id memory huge", argon("m=4194304,t=1,p=1"), "memory"},
		{"argon2id time 0", argon("m=64,t=0,p=1"), "passes"},
		{"argon2id time huge", argon("m=64,t=100,p=1"), "passes"},
		{"argon2id threads 0", argon("m=64,t=1,p=0"), "threads"},
		{"argon2id threads huge", argon("m=64,t=1,p=255"), "threads"},
		{"argon2id salt base64", "$argon2id$v=19$m=64,t=1,p=1$!!$" + key, "salt"},
		{"argon2id salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, "salt"},
		{"argon2id salt short", "$argon2id$v=19$m=64,t=1,p=1$" + b64(make([]byte, 4)) + "$" + key, "salt of 4 bytes"},
		{"argon2id key base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$%%", "key"},
		{"argon2id key short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64(make([]byte, 8)), "key of 8 bytes"},
		{"argon2id key long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64(make([]byte, 200)), "key of 200 bytes"},
		{"pbkdf2 parts", "pbkdf2_sha256$1000$seasalt", "want pbkdf2_sha256$"},
		{"pbkdf2 iterations", "pbkdf2_sha256$many$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=", "iterations"},
		{"pbkdf2 iterations 0", "pbkdf2_sha256$0$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=", "iterations"},
		{"pbkdf2 iterations huge", "pbkdf2_sha256$20000000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=", "iterations"},
		{"pbkdf2 no salt", "pbkdf2_sha256$1000$$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=", "salt"},
		{"pbkdf2 base64", "pbkdf2_sha256$1000$seasalt$not base64", "illegal base64"},
		{"pbkdf2 length", "pbkdf2_sha256$1000$seasalt$" + base64.StdEncoding.EncodeToString(make([]byte, 20)), "20 bytes, want 32"},
		{"pbkdf2_sha1 length", "pbkdf2_sha1$1000$seasalt$" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "32 bytes, want 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := parseHash(tt.hash)
			if err == nil {
				t.Fatalf("parseHash accepted it as %s", v.kind())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	// The format `caddy hash-password --algorithm argon2id` prints, with
	// its default parameters.
	if !strings.HasPrefix(h, "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Errorf("hash %q is not in Caddy's format", h)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 6 || len(parts[4]) != 22 || len(parts[5]) != 43 {
		t.Errorf("hash %q: want a 16-byte salt and a 32-byte key in unpadded base64", h)
	}
	v, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	if !v.verify("correct horse") || v.verify("correct horse!") {
		t.Error("round trip failed")
	}
	if h2, _ := HashPassword("correct horse"); h2 == h {
		t.Error("two hashes of one password are equal: no salt?")
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password hashed")
	}
}

func FuzzParseHash(f *testing.F) {
	for _, s := range []string{
		"", "!", "x", "$", "$$$$$", "hunter2",
		caddyArgon2idLow, caddyArgon2idDefault, "argon2" + caddyArgon2idLow,
		"$argon2id$v=19$m=4294967295,t=4294967295,p=255$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		djangoSHA256, djangoSHA1, "pbkdf2_sha256$-1$a$AA==", "pbkdf2_sha256$99999999999999999999$a$AA==",
		"$2a$04$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"$2b$99$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"bcrypt_sha256$$2b$04$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseHash(s)
		if err != nil {
			if v != nil {
				t.Fatal("a verifier with an error")
			}
			return
		}
		// Whatever is accepted stays within the bounds.
		switch h := v.(type) {
		case argon2idHash:
			if h.memory < 1 || h.memory > maxArgon2Memory || h.time < 1 || h.time > maxArgon2Time ||
				h.threads < 1 || h.threads > maxArgon2Threads ||
				len(h.key) < minArgon2KeyLen || len(h.key) > maxArgon2KeyLen ||
				len(h.salt) < minArgon2SaltLen || len(h.salt) > maxArgon2SaltLen {
				t.Fatalf("out-of-bounds argon2id accepted: %s", h.kind())
			}
		case bcryptHash:
			if h.cost < bcrypt.MinCost || h.cost > maxBcryptCost || len(h.hash) != bcryptHashLen {
				t.Fatalf("out-of-bounds bcrypt accepted: %s", s)
			}
		case pbkdf2Hash:
			if h.iter < 1 || h.iter > maxPBKDF2Iter || len(h.key) != h.h().Size() {
				t.Fatalf("out-of-bounds pbkdf2 accepted: %s", s)
			}
		case unusable:
			if !strings.HasPrefix(s, "!") {
				t.Fatalf("%q taken as unusable", s)
			}
		default:
			t.Fatalf("unexpected verifier %T", v)
		}
	})
}
