"""The operator's restrictions on trigger rules: topic prefixes per account, the schema registry
allow-list, and the trigger process not running (or fetching for) a rule they no longer allow."""

import pytest

from mailstream.gateway.adapters.schema_registry import RegistryNotAllowed, SchemaRegistry
from mailstream.gateway.triggers.allowed import Allowed, origin, topic_allowed
from mailstream.gateway.triggers.rule import RuleError, TriggerRule
from mailstream.gateway.triggers.runner import NOT_RUN, Runner
from mailstream.gateway.triggers.settings import TriggerSettings


def rule(**changes) -> TriggerRule:
    fields = dict(
        id="6f1c2b8e-0000-4000-8000-000000000001",
        account_id=7,
        source_topic="acct-7.orders",
        record_format="JSON",
        email_id=42,
        recipient_field="customer.email",
        send_id_template="order-{{ order_id }}",
    )
    fields.update(changes)
    return TriggerRule(**fields)


def avro(url: str, **changes) -> TriggerRule:
    return rule(record_format="AVRO", schema_registry_url=url, **changes)


class TestTopicPrefixes:
    def test_the_default_names_each_account_by_its_id(self):
        allowed = Allowed(topic_prefixes=("acct-{account_id}.", "shared."))
        assert allowed.topic_prefixes_for(7, None) == ("acct-7.", "shared.")
        assert allowed.topic_prefixes_for(12, None) == ("acct-12.", "shared.")

    def test_an_accounts_own_list_replaces_the_default_and_empty_means_any(self):
        allowed = Allowed(topic_prefixes=("acct-{account_id}.",))
        assert allowed.topic_prefixes_for(7, ("shop.", "t{account_id}-")) == ("shop.", "t7-")
        assert allowed.topic_prefixes_for(7, ()) == ()

    @pytest.mark.parametrize(
        ("topic", "prefixes", "ok"),
        [
            ("acct-7.orders", ("acct-7.",), True),
            ("acct-7.", ("acct-7.",), True),
            ("acct-70.orders", ("acct-7.",), False),  # the dot ends account 7's prefix
            ("acct-7orders", ("acct-7.",), False),
            ("orders", ("acct-7.", "orders"), True),
            ("anything", (), True),
        ],
    )
    def test_a_topic_must_start_with_one_prefix(self, topic, prefixes, ok):
        assert topic_allowed(topic, prefixes) is ok

    def test_a_refused_topic_names_the_allowed_prefixes(self):
        allowed = Allowed(topic_prefixes=("acct-{account_id}.",))
        with pytest.raises(RuleError) as refused:
            allowed.check(rule(source_topic="acct-8.orders"), allowed.topic_prefixes_for(7, None))
        assert refused.value.field == "sourceTopic"
        assert "'acct-7.'" in refused.value.message and "acct-8.orders" in refused.value.message
        allowed.check(rule(), allowed.topic_prefixes_for(7, None))

    def test_a_malformed_default_prefix_stops_start_up(self):
        with pytest.raises(ValueError, match="MAILSTREAM_TRIGGER_TOPIC_PREFIXES"):
            Allowed(topic_prefixes=("acct {account_id}",))


class TestRegistryAllowList:
    ALLOWED = Allowed(registry_urls=("http://allowed.example", "https://registry.example:8443/confluent/"))

    @pytest.mark.parametrize(
        "url",
        [
            "http://allowed.example",
            "http://allowed.example/",
            "http://allowed.example:80/apis/ccompat/v7",
            "HTTP://Allowed.Example",
            "https://registry.example:8443/confluent",
            "https://registry.example:8443/confluent/v1",
        ],
    )
    def test_allowed(self, url):
        assert self.ALLOWED.registry_allowed(url)

    @pytest.mark.parametrize(
        "url",
        [
            "http://allowed.example.evil.com",  # another host that starts with the allowed one
            "http://evil.com/allowed.example",
            "http://allowed.example@evil.com",  # user info: refused outright
            "http://evil.com\\@allowed.example",
            "http://allowed.example:8080",  # another port
            "https://allowed.example",  # another scheme (and port)
            "https://registry.example/confluent",  # the default port 443 is not 8443
            "https://registry.example:8443/confluent-evil",  # a path prefix is whole segments
            "https://registry.example:8443/confluent/../admin",
            "https://registry.example:8443/confluent/%2e%2e/admin",
            "https://registry.example:8443/",
            "http://allowed.example/?x=1",
            "http://allowed.example#frag",
            "ftp://allowed.example",
            "http://169.254.169.254/latest/meta-data",
        ],
    )
    def test_refused(self, url):
        assert not self.ALLOWED.registry_allowed(url)

    def test_the_port_is_made_explicit_and_hosts_are_case_blind(self):
        assert origin("HTTPS://Registry.Example/a/b") == ("https", "registry.example", 443, ("a", "b"))

    def test_an_empty_list_refuses_every_registry_and_names_the_setting(self):
        with pytest.raises(RuleError) as refused:
            Allowed().check(avro("http://allowed.example"), ())
        assert refused.value.field == "schemaRegistryUrl"
        assert "MAILSTREAM_TRIGGER_REGISTRY_URLS" in refused.value.message and "avroSchema" in refused.value.message
        Allowed().check(rule(record_format="AVRO", avro_schema='"string"'), ())  # an inline schema is fine

    def test_a_refused_registry_names_the_allowed_ones(self):
        with pytest.raises(RuleError) as refused:
            self.ALLOWED.check(avro("http://allowed.example.evil.com"), ())
        assert "http://allowed.example or https://registry.example:8443/confluent/" in refused.value.message

    def test_a_malformed_allowed_url_stops_start_up(self):
        with pytest.raises(ValueError, match="MAILSTREAM_TRIGGER_REGISTRY_URLS"):
            Allowed(registry_urls=("127.0.0.1:8087",))


async def test_the_registry_adapter_fetches_nothing_from_a_url_not_allowed():
    registry = SchemaRegistry(allowed=Allowed(registry_urls=("http://allowed.example",)).registry_allowed)
    with pytest.raises(RegistryNotAllowed):
        await registry.schema("http://allowed.example.evil.com", 1)
    assert registry._session is None  # no client was even made
    await registry.close()


class TestRunnerAdmits:
    def runner(self, allowed: Allowed) -> Runner:
        return Runner(TriggerSettings(), None, send=None, publish_dead=None, schemas=None, allowed=allowed)

    def gauge(self, trigger: str, field: str) -> float | None:
        for metric in NOT_RUN.collect():
            for sample in metric.samples:
                if sample.labels == {"trigger": trigger, "field": field}:
                    return sample.value
        return None

    def test_a_rule_outside_its_accounts_narrowed_prefixes_is_not_run_and_shows(self, caplog):
        runner = self.runner(Allowed())
        inside, outside = rule(id="r-in"), rule(id="r-out", source_topic="acct-8.orders")
        assert set(runner.admitted([inside, outside], {})) == {"r-in", "r-out"}
        assert set(runner.admitted([inside, outside], {7: ("acct-7.",)})) == {"r-in"}
        assert self.gauge("r-out", "sourceTopic") == 1
        assert [r.fields["trigger"] for r in caplog.records if r.msg.startswith("trigger not run")] == ["r-out"]
        runner.admitted([inside, outside], {7: ("acct-7.",)})  # still refused: no second line
        assert len([r for r in caplog.records if r.msg.startswith("trigger not run")]) == 1
        assert set(runner.admitted([inside, outside], {})) == {"r-in", "r-out"}  # widened again: it runs
        assert self.gauge("r-out", "sourceTopic") is None

    def test_a_stored_rule_whose_registry_is_no_longer_allowed_is_not_run(self):
        runner = self.runner(Allowed(registry_urls=("http://127.0.0.1:8087",)))
        kept, dropped = avro("http://127.0.0.1:8087", id="r-kept"), avro("http://10.0.0.5:8081", id="r-dropped")
        assert set(runner.admitted([kept, dropped], {})) == {"r-kept"}
        assert self.gauge("r-dropped", "schemaRegistryUrl") == 1
