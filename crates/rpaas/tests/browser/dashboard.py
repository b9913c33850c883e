"""Drives the rpaas dashboard in a real headless Chromium (Debian's chromium and
chromium-driver, Python selenium from Debian). Started by crates/rpaas/tests/dashboard.rs,
which runs the node; each phase signs in afresh. Exits non-zero with a message on the first
failed check. Screenshots go to $SHOTS."""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait


class Failed(Exception):
    pass


def fail(msg):
    raise Failed("FAIL: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-sync"]:
        o.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(30)
    return d


def shot(d, name):
    path = os.path.join(os.environ["SHOTS"], name + ".png")
    d.save_screenshot(path)


def text(d):
    return d.find_element(By.TAG_NAME, "body").text


def login(d, base, user, password):
    d.get(base + "/ui/instances")
    check("/ui/login" in d.current_url, "without a session /ui/ goes to the login form: " + d.current_url)
    check(d.find_element(By.NAME, "csrf").get_attribute("value"), "the login form carries a csrf field")
    d.find_element(By.NAME, "username").send_keys(user)
    d.find_element(By.NAME, "password").send_keys(password)
    d.find_element(By.ID, "login").click()
    WebDriverWait(d, 10).until(ec.url_contains("/ui/instances"))


def post_status(d, path, fields):
    """POSTs a form body from the page's own origin (the browser's cookies); the status."""
    return d.execute_async_script(
        """
        const [path, body, done] = arguments;
        fetch(path, {method: 'POST', credentials: 'same-origin', redirect: 'manual',
                     headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                     body: new URLSearchParams(body).toString()})
          .then(r => done(r.status)).catch(e => done('error ' + e));
        """,
        path,
        fields,
    )


def phase_refusal_and_acl(d, a):
    base, inst, host, ip = a["base"], a["instance"], a["host"], a["ip"]
    login(d, base, a["admin"], a["password"])
    body = text(d)
    check(host in body, "the partner sees its instance " + host)
    check(a["other_host"] not in body, "the partner does not see the other partner's instance")
    shot(d, "instances")

    d.get(base + "/ui/instances/" + inst)
    check(int(d.find_element(By.ID, "refusals").text) >= 1, "the refusal is counted")
    check(d.find_element(By.TAG_NAME, "svg"), "a traffic chart")
    shot(d, "instance")

    # Find the refused address from the instance page's form.
    box = d.find_element(By.NAME, "ip")
    box.send_keys(ip)
    box.submit()
    WebDriverWait(d, 10).until(ec.url_contains("/decisions"))
    reasons = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".reason")]
    check(a["reason"] in reasons, "the decision for %s shows reason %s: %r" % (ip, a["reason"], reasons))
    check("DENY" in text(d), "the explain breakdown says DENY")
    shot(d, "decisions")

    # The ACL: trust the address's network; preview, then save.
    d.get(base + "/ui/instances/%s/acl" % inst)
    t = d.find_element(By.NAME, "trusted")
    t.clear()
    t.send_keys("not-a-network")
    d.find_element(By.ID, "save").click()
    WebDriverWait(d, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".err")))
    errs = [e.get_attribute("data-field") for e in d.find_elements(By.CSS_SELECTOR, ".err")]
    check("acl.trusted[0]" in errs, "a bad network is shown next to the field: %r" % errs)
    t = d.find_element(By.NAME, "trusted")
    t.clear()
    t.send_keys(a["network"] + " # the MSP office")
    d.find_element(By.XPATH, "//button[text()='Preview the effect']").click()
    WebDriverWait(d, 10).until(ec.presence_of_element_located((By.ID, "preview")))
    WebDriverWait(d, 10).until(lambda d: d.find_element(By.ID, "preview").text)
    check(d.find_elements(By.ID, "would"), "a preview: " + d.find_element(By.ID, "preview").text)
    check("would have refused" in text(d), "the preview says what the change would do")
    shot(d, "acl")
    d.find_element(By.ID, "save").click()
    WebDriverWait(d, 10).until(ec.presence_of_element_located((By.ID, "saved")))
    check(a["network"] in d.find_element(By.NAME, "trusted").get_attribute("value"), "the change is kept")


def phase_after(d, a):
    base, inst = a["base"], a["instance"]
    login(d, base, a["admin"], a["password"])
    d.get(base + "/ui/audit")
    rows = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#audit tr")]
    check(any("acl.update" in r and a["admin"] in r for r in rows), "the audit shows the change by the user: %r" % rows[:3])
    shot(d, "audit")
    d.get(base + "/ui/keys")
    check(d.find_element(By.ID, "keys"), "the keys page")
    shot(d, "keys")

    # Another partner's instance: 404, whatever page.
    for p in ["", "/acl", "/decisions?ip=1.2.3.4"]:
        d.get(base + "/ui/instances/" + a["other"] + p)
        check("404" in d.find_element(By.TAG_NAME, "h1").text, "another partner's instance is 404: " + p)

    # A POST without the CSRF token is refused, with one it is taken.
    d.get(base + "/ui/instances/%s/acl" % inst)
    csrf = d.find_element(By.NAME, "csrf").get_attribute("value")
    st = post_status(d, "/ui/instances/%s/acl" % inst, {"deployment": "all-traffic"})
    check(st == 403, "a POST without csrf is refused: %r" % st)
    st = post_status(d, "/ui/instances/%s/acl" % inst, {"deployment": "all-traffic", "csrf": "0" * len(csrf)})
    check(st == 403, "a POST with a wrong csrf is refused: %r" % st)

    # A viewer reads and cannot change.
    d.delete_all_cookies()
    login(d, base, a["viewer"], a["password"])
    d.get(base + "/ui/instances/%s/acl" % inst)
    check("may read this ACL" in text(d), "the viewer is told it may only read")
    check(not d.find_elements(By.ID, "save"), "the viewer has no Save button")
    csrf = d.find_element(By.NAME, "csrf").get_attribute("value")
    st = post_status(d, "/ui/instances/%s/acl" % inst, {"deployment": "all-traffic", "csrf": csrf})
    check(st == 403, "the viewer's change is refused: %r" % st)


def main():
    a = json.loads(sys.argv[1])
    d = browser()
    try:
        {"refusal_and_acl": phase_refusal_and_acl, "after": phase_after}[a["phase"]](d, a)
    except Exception:
        try:
            for entry in d.get_log("browser"):
                print("console: %s" % entry, file=sys.stderr)
        except Exception as e:
            print("no console log: %s" % e, file=sys.stderr)
        print("page at failure: %s\n%s" % (d.current_url, text(d)), file=sys.stderr)
        shot(d, "failure-" + a["phase"])
        raise
    finally:
        d.quit()
    print("OK " + a["phase"])


if __name__ == "__main__":
    main()
