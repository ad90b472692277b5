# Unit checks of examples/qatrack/adauth_qatrack.py with Django's
# RequestFactory, run by TestDjangoModuleUnits (django_e2e_test.go) inside
# the djangotest project (django.setup() already done). Prints "ok".
from django.contrib.auth.models import AnonymousUser, Group, User
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import override_settings

import adauth_qatrack as aq

# split_name
assert aq.split_name("Alice Andersen") == ("Alice", "Andersen")
assert aq.split_name("Andersen, Alice") == ("Alice", "Andersen")
assert aq.split_name("  Anna   van der  Berg ") == ("Anna", "van der Berg")
assert aq.split_name("Cher") == ("Cher", "")
assert aq.split_name("") == ("", "")
assert aq.split_groups(" admin, physics ,,") == ["admin", "physics"]
assert aq.split_groups("") == []

rf = RequestFactory()


def req(addr, **headers):
    r = rf.get("/x/", REMOTE_ADDR=addr, **headers)
    r.session = SessionStore()
    r.user = AnonymousUser()
    return r


# The trust rule.
for addr, want in [
    ("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("127.0.0.2", False), ("10.1.2.3", False), ("", False), ("unix", False),
]:
    assert aq.from_trusted_proxy(req(addr)) is want, (addr, want)
with override_settings(ADAUTH_TRUSTED_PROXIES=["10.0.0.0/8", "not-an-ip", "fd00::/8"]):
    assert aq.from_trusted_proxy(req("10.1.2.3"))
    assert aq.from_trusted_proxy(req("fd00::5"))
    assert not aq.from_trusted_proxy(req("127.0.0.1"))
    assert not aq.from_trusted_proxy(req("11.0.0.1"))

mw = aq.AdauthMiddleware(lambda r: HttpResponse())

# Untrusted: headers dropped, nobody logged in.
r = req("192.0.2.9", HTTP_X_REMOTE_USER="bob", HTTP_X_REMOTE_GROUPS="admin")
mw.process_request(r)
assert not r.user.is_authenticated
assert not any(k.startswith("HTTP_X_REMOTE_") for k in r.META), r.META

# Trusted: user created with groups; case-insensitive match to "Physics";
# unknown group skipped; non-ASCII name repaired.
Group.objects.get_or_create(name="Physics")
latin1 = "Ørsted, Hans Christian".encode("utf-8").decode("latin-1")
r = req("127.0.0.1", HTTP_X_REMOTE_USER="hco", HTTP_X_REMOTE_GROUPS="physics,nosuchgroup",
        HTTP_X_REMOTE_NAME=latin1, HTTP_X_REMOTE_EMAIL="hco@hospital.example")
mw.process_request(r)
u = User.objects.get(username="hco")
assert r.user == u
assert [g.name for g in u.groups.all()] == ["Physics"]
assert (u.first_name, u.last_name, u.email) == ("Hans Christian", "Ørsted", "hco@hospital.example"), (u.first_name, u.last_name)
assert not Group.objects.filter(name="nosuchgroup").exists()
assert r.session[aq.SESSION_KEY] == aq.identity_fingerprint(r.META)

# Same session, groups changed: re-applied without a new authentication.
session = r.session
r2 = req("127.0.0.1", HTTP_X_REMOTE_USER="hco", HTTP_X_REMOTE_GROUPS="",
         HTTP_X_REMOTE_NAME="Hans Christian Ørsted".encode("utf-8").decode("latin-1"))
r2.session, r2.user = session, u
mw.process_request(r2)
u.refresh_from_db()
assert list(u.groups.all()) == []

# An empty X-Remote-User from the trusted hop is no header.
r3 = req("127.0.0.1", HTTP_X_REMOTE_USER="")
mw.process_request(r3)
assert not r3.user.is_authenticated

# ADAUTH_MANAGED_GROUPS, ADAUTH_CREATE_GROUPS, superuser/staff.
hand = Group.objects.create(name="Auditors")
u.groups.add(hand)
with override_settings(ADAUTH_MANAGED_GROUPS=["physics", "admin"], ADAUTH_CREATE_GROUPS=True,
                       ADAUTH_SUPERUSER_GROUPS=["admin"], ADAUTH_STAFF_GROUPS=["staff"]):
    aq.apply_identity(u, {aq.GROUPS_KEY: "admin,staff,physics"})
    u.refresh_from_db()
    # staff is not managed, so neither created nor added; admin is created.
    assert sorted(g.name for g in u.groups.all()) == ["Auditors", "Physics", "admin"], list(u.groups.all())
    assert not Group.objects.filter(name="staff").exists()
    assert u.is_superuser and u.is_staff
    aq.apply_identity(u, {aq.GROUPS_KEY: ""})
    u.refresh_from_db()
    assert sorted(g.name for g in u.groups.all()) == ["Auditors"]
    assert not u.is_superuser and not u.is_staff

# A deactivated user is not signed in by adauth's header.
u.is_active = False
u.save()
r4 = req("127.0.0.1", HTTP_X_REMOTE_USER="hco")
mw.process_request(r4)
assert not r4.user.is_authenticated

print("ok")
