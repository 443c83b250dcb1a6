from decimal import Decimal

from chargeback_assets.engine.fingerprint import billing_fingerprint, line_id

from .builders import line


def test_line_id_depends_on_the_key_only() -> None:
    assert line_id(line("1")) == line_id(line("2"))
    assert line_id(line("1")) != line_id(line("1", env_id="env-2"))


def test_fingerprint_ignores_order_and_sees_every_amount_change() -> None:
    a, b = line("1"), line("2", product_type="KAFKA_BASE")
    assert billing_fingerprint([a, b]) == billing_fingerprint([b, a])
    revised = line("2.0001", product_type="KAFKA_BASE")
    assert billing_fingerprint([a, revised]) != billing_fingerprint([a, b])
    assert billing_fingerprint(
        [a, line("2", product_type="KAFKA_BASE", total_cost=Decimal(2))]
    ) == billing_fingerprint([a, b])
