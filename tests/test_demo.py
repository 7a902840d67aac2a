"""``flask demo`` seeds two schools with every role, idempotently, and the logins it prints work."""
import re

from lp_saas.roles.templates import REQUIRED_ROLE_KEYS
from tests.conftest import school_client


def test_demo_seeds_and_logins_work(app, api_for):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and second.output == first.output
    urls = re.findall(r"http://(\w+)\.localhost:5000/", first.output)
    assert urls == ["ylsh", "demo"]
    password = re.search(r"password: (\S+)", first.output).group(1)
    for slug in urls:
        assert "學" in school_client(app, slug).get("/").get_data(as_text=True)
        roles_seen = set()
        for username in ("admin", "registrar", "teacher1", "homeroom", "counselor", "student1", "parent1"):
            api = api_for(slug)
            api.login(username, password)
            roles_seen |= set(api.get("/api/v1/me").get_json()["roles"])
        assert set(REQUIRED_ROLE_KEYS) <= roles_seen
