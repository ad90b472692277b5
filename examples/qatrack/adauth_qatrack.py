"""adauth_qatrack: sign QATrack+ users in from adauth's identity headers.

adauth (a Caddy plugin) signs staff in against Active Directory, AD FS or a
local break-glass file, deletes every client-sent copy of the identity
headers, and passes the signed-in user to QATrack+ as

    X-Remote-User    canonical username, lower case ("alice")
    X-Remote-Email   e-mail address
    X-Remote-Name    display name ("Alice Andersen" or "Andersen, Alice")
    X-Remote-Groups  application groups, comma-separated, sorted ("admin,physics")

Django sees them as request.META["HTTP_X_REMOTE_USER"] and so on. This module
has the two pieces QATrack+ needs to use them:

* AdauthMiddleware: trusts the headers only on requests that come from the
  Caddy hop (REMOTE_ADDR in ADAUTH_TRUSTED_PROXIES), logs that user in, and
  re-applies e-mail, names and groups whenever adauth's view of them changes.
* AdauthBackend: creates the user on first sight and sets e-mail, first/last
  name, Django groups and (optionally) is_staff / is_superuser from the
  headers.

Settings (all optional):

    ADAUTH_TRUSTED_PROXIES   addresses or networks whose requests may carry the
                             headers; default ["127.0.0.1", "::1"]
    ADAUTH_MANAGED_GROUPS    the only Django groups adauth adds and removes;
                             default None = every group
    ADAUTH_CREATE_GROUPS     create a Django group named in X-Remote-Groups that
                             does not exist yet; default False
    ADAUTH_SUPERUSER_GROUPS  if set, is_superuser = member of one of these
    ADAUTH_STAFF_GROUPS      if set, is_staff = member of one of these (or of a
                             superuser group)

Written for the Django versions QATrack+ 3.x runs on (3.2 and 4.x); tested
end to end with Django 3.2 behind a real Caddy with adauth by
django_e2e_test.go in the adauth repository.
"""

import hashlib
import ipaddress
import logging

from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware
from django.contrib.auth.models import Group

# "qatrack.adauth": QATrack+'s "qatrack" logger (logs/debug.log) catches it.
logger = logging.getLogger("qatrack.adauth")

# The request.META keys of adauth's default identity headers.
USER_KEY = "HTTP_X_REMOTE_USER"
EMAIL_KEY = "HTTP_X_REMOTE_EMAIL"
NAME_KEY = "HTTP_X_REMOTE_NAME"
GROUPS_KEY = "HTTP_X_REMOTE_GROUPS"
IDENTITY_KEYS = (USER_KEY, EMAIL_KEY, NAME_KEY, GROUPS_KEY)

# Where the middleware remembers, in the Django session, which identity it
# last applied to the user (a hash of the e-mail, name and groups headers).
SESSION_KEY = "adauth_identity"

DEFAULT_TRUSTED_PROXIES = ["127.0.0.1", "::1"]


# ---------------------------------------------------------------------------
# Helpers


def _utf8(value):
    """Undo the WSGI decoding of a header value.

    WSGI servers (gunicorn, Django's runserver, mod_wsgi) hand header values to
    Django as latin-1 decoded text (PEP 3333). adauth sends UTF-8, so
    "Ångström" would arrive as "Ã\x85ngstrÃ¶m". Re-encode and decode as UTF-8;
    keep the value as it is when it is not valid UTF-8.
    """
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _trusted_networks():
    nets = []
    for entry in getattr(settings, "ADAUTH_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES):
        try:
            nets.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            logger.error("ADAUTH_TRUSTED_PROXIES: %r is not an IP address or network; ignored", entry)
    return nets


def from_trusted_proxy(request):
    """True when the TCP peer of this request is the Caddy that runs adauth.

    REMOTE_ADDR is the address of the socket peer as the WSGI server saw it.
    Never replace it from X-Forwarded-For (e.g. with a "real IP" middleware)
    in front of this middleware: anyone could then claim to be Caddy.
    """
    addr = (request.META.get("REMOTE_ADDR") or "").strip()
    addr = addr.split("%", 1)[0]  # an IPv6 zone, fe80::1%eth0
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in _trusted_networks())


def split_groups(value):
    """ "admin,physics" -> ["admin", "physics"] (empty items dropped)."""
    return [g.strip() for g in (value or "").split(",") if g.strip()]


def split_name(name):
    """Split a display name into (first name, last name).

    "Andersen, Alice"  -> ("Alice", "Andersen")   (AD's "Last, First" style)
    "Alice Andersen"   -> ("Alice", "Andersen")
    "Anna van der Berg" -> ("Anna", "van der Berg")
    "Cher"             -> ("Cher", "")
    """
    name = " ".join((name or "").split())
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    first, _, last = name.partition(" ")
    return first, last


def identity_fingerprint(meta):
    """A hash of the identity headers that can change during a session."""
    h = hashlib.sha256()
    for key in (USER_KEY, EMAIL_KEY, NAME_KEY, GROUPS_KEY):
        h.update(meta.get(key, "").encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def _lower_set(names):
    return {n.lower() for n in names}


def apply_identity(user, meta):
    """Set e-mail, names, groups and the staff/superuser flags from the headers.

    Called on every sign-in (AdauthBackend.authenticate) and whenever the
    headers change during a Django session (AdauthMiddleware).
    """
    fields = []
    email = meta.get(EMAIL_KEY, "").strip()
    if email and user.email != email:
        user.email = email[: user._meta.get_field("email").max_length]
        fields.append("email")
    name = meta.get(NAME_KEY, "").strip()
    if name:
        first, last = split_name(name)
        first = first[: user._meta.get_field("first_name").max_length]
        last = last[: user._meta.get_field("last_name").max_length]
        if (user.first_name, user.last_name) != (first, last):
            user.first_name, user.last_name = first, last
            fields += ["first_name", "last_name"]

    names = split_groups(meta.get(GROUPS_KEY, ""))
    have = _lower_set(names)
    superuser_groups = getattr(settings, "ADAUTH_SUPERUSER_GROUPS", None)
    staff_groups = getattr(settings, "ADAUTH_STAFF_GROUPS", None)
    if superuser_groups is not None:
        is_superuser = bool(have & _lower_set(superuser_groups))
        if user.is_superuser != is_superuser:
            user.is_superuser = is_superuser
            fields.append("is_superuser")
    if staff_groups is not None:
        # The Django admin needs is_staff, so a superuser group counts too.
        is_staff = bool(have & (_lower_set(staff_groups) | _lower_set(superuser_groups or [])))
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            fields.append("is_staff")
    if fields:
        user.save(update_fields=fields)

    sync_groups(user, names)


def sync_groups(user, names):
    """Make the user's Django groups exactly the ones adauth lists.

    Group names match case-insensitively (adauth's own matching is
    case-insensitive; a QATrack+ group "Physics" is adauth's "physics").
    With ADAUTH_MANAGED_GROUPS only those groups are added or removed: groups
    an administrator gives by hand in QATrack+ stay. A listed group that does
    not exist in Django is created only with ADAUTH_CREATE_GROUPS = True
    (QATrack+ groups carry permissions: an administrator should create them);
    otherwise it is skipped with a warning in the log.
    """
    managed = getattr(settings, "ADAUTH_MANAGED_GROUPS", None)
    managed = None if managed is None else _lower_set(managed)
    create = getattr(settings, "ADAUTH_CREATE_GROUPS", False)

    def is_managed(lname):
        return managed is None or lname in managed

    wanted = {}
    for n in names:
        if is_managed(n.lower()):
            wanted.setdefault(n.lower(), n)

    existing = {}
    for g in Group.objects.all():
        key = g.name.lower()
        # Two groups that differ only in case: prefer the exact spelling.
        if key not in existing or g.name == wanted.get(key):
            existing[key] = g

    current = list(user.groups.all())
    current_keys = {g.name.lower() for g in current}
    remove = [g for g in current if is_managed(g.name.lower()) and g.name.lower() not in wanted]
    add = []
    for key, name in wanted.items():
        if key in current_keys:
            continue
        group = existing.get(key)
        if group is None:
            if not create:
                logger.warning(
                    "adauth: user %s is in group %r, which does not exist in QATrack+; "
                    "create it in the admin (or set ADAUTH_CREATE_GROUPS = True)",
                    user.get_username(), name)
                continue
            group, _ = Group.objects.get_or_create(name=name)
        add.append(group)
    if remove:
        user.groups.remove(*remove)
    if add:
        user.groups.add(*add)
    if remove or add:
        logger.info("adauth: groups of %s: added %s, removed %s", user.get_username(),
                    sorted(g.name for g in add), sorted(g.name for g in remove))


# ---------------------------------------------------------------------------
# Django classes


class AdauthBackend(RemoteUserBackend):
    """Authenticates the user named by X-Remote-User (already checked by adauth).

    Put it first in AUTHENTICATION_BACKENDS; keep ModelBackend (or QATrack+'s
    QATrackAccountBackend) after it for a local administrator's password.
    """

    # adauth signed the person in; QATrack+ gets an account on first sight.
    create_unknown_user = True

    def clean_username(self, username):
        # adauth already sends the canonical name: the directory's own
        # sAMAccountName (or winaccountname without DOMAIN\, or the local
        # file's username), lower-cased. Stripping a domain or changing the
        # case here would make the user's name differ from the header and
        # sign them out and in on every request.
        return username

    def authenticate(self, request, remote_user):
        user = super().authenticate(request, remote_user)
        # A user whom a QATrack+ administrator deactivated (is_active = False)
        # gets None from super(): adauth's sign-in does not reactivate them.
        if user is not None and request is not None:
            apply_identity(user, request.META)
            request._adauth_applied = True
        return user


class AdauthMiddleware(RemoteUserMiddleware):
    """RemoteUserMiddleware for adauth's X-Remote-User, from Caddy only.

    Place it right after django.contrib.auth.middleware.AuthenticationMiddleware.
    """

    header = USER_KEY

    # What a request WITHOUT X-Remote-User means depends on where it came from:
    #
    # * From Caddy (a trusted proxy): adauth deletes any client-sent copy and
    #   sets the header for every signed-in user, on public paths too. No
    #   header means "nobody is signed in to adauth" (signed out, session
    #   expired, removed by recheck), so a Django session that adauth started
    #   ends as well: force_logout_if_no_header stays True. Sessions from
    #   ModelBackend (the administrator's own password) are left alone, as
    #   RemoteUserMiddleware does.
    # * From anywhere else (someone reaching gunicorn directly, a health check,
    #   a script on the server): the headers mean nothing and are ignored, and
    #   their absence logs nobody out. process_request returns before any of
    #   the RemoteUserMiddleware logic runs.
    force_logout_if_no_header = True

    def process_request(self, request):
        if not from_trusted_proxy(request):
            # Drop the headers, so that nothing later in QATrack+ can read a
            # forged value either.
            for key in IDENTITY_KEYS:
                request.META.pop(key, None)
            return None

        for key in IDENTITY_KEYS:
            if key in request.META:
                request.META[key] = _utf8(request.META[key])
        if not request.META.get(USER_KEY):
            # An empty header is no header.
            request.META.pop(USER_KEY, None)

        super().process_request(request)
        self._resync(request)
        return None

    def _resync(self, request):
        """Re-apply e-mail, names and groups when adauth's view of them changed.

        RemoteUserMiddleware authenticates only when the user in the header
        differs from the one in the Django session; it never looks at the
        other headers again. But adauth's groups change during a session: its
        recheck (every 15 minutes by default) updates a directory user's groups
        and a new adauth sign-in brings the current ones. Without this, a
        physicist removed from "QA-Admins" in AD would keep QATrack+'s admin
        group until the Django session ended (two weeks by default in
        QATrack+). A hash of the headers in the session makes the check free
        on the requests where nothing changed.
        """
        username = request.META.get(USER_KEY)
        user = getattr(request, "user", None)
        if not username or user is None or not user.is_authenticated:
            return
        if user.get_username() != username:
            return  # a different account (authentication failed): leave it
        fingerprint = identity_fingerprint(request.META)
        if request.session.get(SESSION_KEY) == fingerprint:
            return
        if not getattr(request, "_adauth_applied", False):
            apply_identity(user, request.META)
        request.session[SESSION_KEY] = fingerprint


__all__ = [
    "AdauthBackend",
    "AdauthMiddleware",
    "apply_identity",
    "from_trusted_proxy",
    "split_groups",
    "split_name",
    "sync_groups",
]
