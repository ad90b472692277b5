# Populates a freshly provisioned (stopped) Samba AD database with the adauth
# test fixture. Run by sambadc with Debian's /usr/bin/python3:
#   populate.py SMB_CONF SPEC_JSON main     (everything except frank's password)
#   faketime -f -50d populate.py SMB_CONF SPEC_JSON aged   (passwords set in the past)
# The spec (users, groups, policies) is defined in fixture.go.
import json
import sys

import ldb
from samba import dsdb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB


def nttime(unix):
    return str((int(unix) + 11644473600) * 10000000)


def main():
    conf, spec_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    lp = LoadParm()
    lp.load(conf)
    samdb = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
    base = str(samdb.domain_dn())

    def dn(rel):
        return ldb.Dn(samdb, rel + "," + base)

    def user_dn(name):
        res = samdb.search(base=base, scope=ldb.SCOPE_SUBTREE,
                           expression="(sAMAccountName=%s)" % ldb.binary_encode(name), attrs=["dn"])
        if len(res) != 1:
            raise Exception("no unique account %r" % name)
        return str(res[0].dn)

    if mode == "aged":
        for u in spec["users"]:
            if u.get("aged"):
                samdb.setpassword("(sAMAccountName=%s)" % ldb.binary_encode(u["name"]), u["password"])
        return

    # Domain-wide policy: no complexity, no history, no age limits, no lockout:
    # each fixture that needs a policy gets its own PSO.
    m = ldb.Message(ldb.Dn(samdb, base))
    for attr, val in [("pwdProperties", "0"), ("pwdHistoryLength", "0"), ("minPwdAge", "0"),
                      ("maxPwdAge", "-9223372036854775808"), ("minPwdLength", "1"),
                      ("lockoutThreshold", "0")]:
        m[attr] = ldb.MessageElement(val, ldb.FLAG_MOD_REPLACE, attr)
    samdb.modify(m)

    for ou in spec["ous"]:
        samdb.add({"dn": dn(ou), "objectClass": "organizationalUnit"})

    for g in spec["groups"]:
        samdb.add({"dn": dn(g["rdn"] + "," + g["ou"]), "objectClass": "group",
                   "sAMAccountName": g["sam"], "description": "adauth test fixture group"})

    for u in spec["users"]:
        ou = u.get("ou") or None
        samdb.newuser(u["name"], u["password"], useusernameascn=True, userou=ou,
                      givenname=u.get("given") or None, surname=u.get("surname") or None,
                      mailaddress=u.get("mail") or None,
                      force_password_change_at_next_login_req=bool(u.get("must_change")))
        filt = "(sAMAccountName=%s)" % ldb.binary_encode(u["name"])
        if u.get("disabled"):
            samdb.disable_account(filt)
        if u.get("never_expires"):
            samdb.toggle_userAccountFlags(filt, dsdb.UF_DONT_EXPIRE_PASSWD, on=True)
        if u.get("account_expired"):
            mm = ldb.Message(ldb.Dn(samdb, user_dn(u["name"])))
            mm["accountExpires"] = ldb.MessageElement(nttime(1577836800), ldb.FLAG_MOD_REPLACE, "accountExpires")
            samdb.modify(mm)

    # Memberships, by DN (member values may be users or groups).
    for g in spec["groups"]:
        members = []
        for name in g.get("members", []):
            members.append(user_dn(name))
        if members:
            mm = ldb.Message(dn(g["rdn"] + "," + g["ou"]))
            mm["member"] = ldb.MessageElement(members, ldb.FLAG_MOD_ADD, "member")
            samdb.modify(mm)

    psc = "CN=Password Settings Container,CN=System"
    for p in spec["psos"]:
        samdb.add({
            "dn": dn("CN=%s,%s" % (p["name"], psc)),
            "objectClass": "msDS-PasswordSettings",
            "msDS-PasswordSettingsPrecedence": str(p["precedence"]),
            "msDS-PasswordReversibleEncryptionEnabled": "FALSE",
            "msDS-PasswordHistoryLength": "0",
            "msDS-PasswordComplexityEnabled": "FALSE",
            "msDS-MinimumPasswordLength": "1",
            "msDS-MinimumPasswordAge": "0",
            "msDS-MaximumPasswordAge": str(-int(p["max_age_days"]) * 864000000000) if p["max_age_days"] else "-9223372036854775808",
            "msDS-LockoutThreshold": str(p["lockout_threshold"]),
            "msDS-LockoutObservationWindow": str(-30 * 60 * 10000000),
            "msDS-LockoutDuration": str(-30 * 60 * 10000000),
            "msDS-PSOAppliesTo": [user_dn(n) for n in p["applies_to"]],
        })


main()
