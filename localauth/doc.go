// Package localauth checks passwords against a JSON users file: adauth's
// local accounts, the break-glass path that works when the directory is
// down. It knows nothing of Caddy; the adauth module adapts it.
//
// # The users file
//
//	{
//	  "users": [
//	    {
//	      "username": "alice",
//	      "password": "$argon2id$v=19$m=47104,t=1,p=1$…$…",
//	      "email": "alice@hospital.example",
//	      "given_name": "Alice",
//	      "family_name": "Liddell",
//	      "groups": ["physics", "admin"],
//	      "disabled": false
//	    }
//	  ]
//	}
//
// Usernames are matched case-insensitively and the signed-in id is the
// lower-cased username. The groups are application groups. Passwords are
// hashes, recognised by their prefix:
//
//   - bcrypt: $2a$, $2b$, $2y$ (cost at most 16);
//   - argon2id: the PHC string `caddy hash-password --algorithm argon2id`
//     prints, $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash>
//     (what HashPassword writes too);
//   - Django: pbkdf2_sha256$…, pbkdf2_sha1$…, bcrypt$…, bcrypt_sha256$…,
//     argon2$argon2id$…, so that QATrack+'s users can be imported with
//     their passwords (see ImportDjango); Django's unusable password "!…"
//     lets no password in.
//
// Anything else, a plaintext password above all, makes the file invalid.
// Parameters are bounded (argon2id at most 256 MiB, 16 passes and 16
// threads; pbkdf2 at most 10,000,000 iterations) so that a hostile file
// cannot make one sign-in take the machine.
//
// # Checking passwords
//
// Open reads the file and watches it: it is read again about a second
// after it changes, and a file that no longer reads or validates keeps the
// last good users and is reported to the OnReloadError function.
// Store.Authenticate follows the caddyauth contract: a bad username or
// password is ok=false with no error. A disabled user who gives the right
// password gets an *AccountDisabledError, whose UserMessage is for the
// login page; with a wrong password a disabled user is like any other. An
// unknown user is checked against a dummy hash of the file's most common
// kind and cost, so a name's existence does not show in the time taken.
// A check costs what the hash asks for (argon2id with Caddy's defaults
// takes 46 MiB and some tens of milliseconds): callers bound how many run
// at once, as adauth does.
//
// # Editing the file
//
// ReadFile, File.Add, File.Find, File.Remove and WriteFile are what `caddy
// adauth user …` uses: WriteFile validates, then replaces the file
// atomically, so a running Caddy never reads half of it. ImportDjango
// converts `manage.py dumpdata auth.user auth.group` output.
package localauth
