"""Real payloads from each device family's documentation, and the config that reads them."""

from __future__ import annotations

from devices.profiles import DecodeLimits, build_decoder
from devices.profiles._sparkplug_proto import Payload
from gateway.ingest.reading import Reading
from tests.devices.helpers import outcome, reason

# --- zigbee2mqtt: Aqara WSDCGQ11LM temperature/humidity/pressure sensor --------------------

AQARA = (
    b'{"battery":100,"humidity":58.18,"linkquality":120,"power_outage_count":3,'
    b'"pressure":1006.3,"temperature":19.2,"voltage":3005}'
)


def test_zigbee2mqtt_aqara() -> None:
    decoder = build_decoder(format="zigbee2mqtt", value="temperature")
    assert outcome(decoder, "zigbee2mqtt/living_room", AQARA, "living_room") == [
        Reading("living_room", "s", 19.2, None)
    ]
    humidity = build_decoder(format="zigbee2mqtt", value="humidity")
    assert outcome(humidity, "zigbee2mqtt/living_room", AQARA, "living_room") == [
        Reading("living_room", "s", 58.18, None)
    ]


def test_zigbee2mqtt_last_seen_and_other_topics() -> None:
    decoder = build_decoder(format="zigbee2mqtt", value="temperature", timestamp="last_seen")
    iso = b'{"temperature":19.2,"last_seen":"2024-01-05T10:00:00.500+01:00"}'
    epoch = b'{"temperature":19.2,"last_seen":1704445200500}'
    assert outcome(decoder, "zigbee2mqtt/x", iso, "x") == [Reading("x", "s", 19.2, 1704445200500)]
    assert outcome(decoder, "zigbee2mqtt/x", epoch, "x") == [Reading("x", "s", 19.2, 1704445200500)]
    plain = build_decoder(format="zigbee2mqtt", value="temperature")
    assert outcome(plain, "zigbee2mqtt/x/availability", b'{"state":"online"}') == (
        "topic 'zigbee2mqtt/x/availability' is not a zigbee2mqtt device state message"
    )
    assert reason(plain, "zigbee2mqtt/bridge/state", b'{"state":"online"}').startswith("topic")
    # a button's action message has no temperature
    assert outcome(plain, "zigbee2mqtt/button", b'{"action":"single","battery":100}') == (
        "field 'temperature': missing"
    )


# --- Tasmota: tele/<topic>/SENSOR -----------------------------------------------------------

TASMOTA = (
    b'{"Time":"2019-12-06T21:51:07","DS18B20":{"Id":"01144A0CB2AA","Temperature":22.5},'
    b'"AM2301":{"Temperature":21.9,"Humidity":48.1,"DewPoint":10.5},"TempUnit":"C"}'
)


def test_tasmota_ds18b20_and_am2301() -> None:
    ds = build_decoder(format="tasmota", value="DS18B20.Temperature", timestamp="Time")
    assert outcome(ds, "tele/greenhouse/SENSOR", TASMOTA) == [
        Reading("dev-1", "s", 22.5, 1575669067000)
    ]
    hum = build_decoder(format="tasmota", value="AM2301.Humidity")
    assert outcome(hum, "tele/greenhouse/SENSOR", TASMOTA) == [Reading("dev-1", "s", 48.1, None)]


def test_tasmota_multiple_ds18b20_status10_and_failures() -> None:
    many = (
        b'{"Time":"2021-03-01T10:00:00+01:00","DS18B20-1":{"Id":"3C01D607C8A8","Temperature":'
        b'20.1},"DS18B20-2":{"Id":"3C01D607E3B1","Temperature":20.7},"TempUnit":"C"}'
    )
    second = build_decoder(format="tasmota", value="DS18B20-2.Temperature", timestamp="Time")
    assert outcome(second, "tele/tank/SENSOR", many) == [Reading("dev-1", "s", 20.7, 1614589200000)]
    status = b'{"StatusSNS":' + TASMOTA + b"}"
    ds = build_decoder(format="tasmota", value="DS18B20.Temperature")
    assert outcome(ds, "stat/greenhouse/STATUS10", status) == [Reading("dev-1", "s", 22.5, None)]
    failed = b'{"Time":"2019-12-06T21:51:07","AM2301":{"Temperature":null,"Humidity":null}}'
    am = build_decoder(format="tasmota", value="AM2301.Temperature")
    assert outcome(am, "tele/greenhouse/SENSOR", failed) == (
        "field 'AM2301.Temperature': expected a number, got null"
    )
    assert outcome(am, "tele/greenhouse/LWT", b"Online") == (
        "topic 'tele/greenhouse/LWT' is Tasmota LWT, not SENSOR telemetry"
    )


# --- Shelly Gen2: NotifyStatus on <id>/events/rpc, or <id>/status/<component> ---------------

SHELLY_HT = (
    b'{"src":"shellyplusht-08b61fcb7f3c","dst":"shellyplusht-08b61fcb7f3c/events",'
    b'"method":"NotifyStatus","params":{"ts":1663930806.45,'
    b'"temperature:0":{"id":0,"tC":23.4,"tF":74.1}}}'
)


def test_shelly_notify_status() -> None:
    decoder = build_decoder(format="shelly", value="temperature:0.tC", timestamp="ts")
    topic = "shellyplusht-08b61fcb7f3c/events/rpc"
    assert outcome(decoder, topic, SHELLY_HT) == [Reading("dev-1", "s", 23.4, 1663930806450)]
    switch = (
        b'{"src":"shellyplus1-84cca87c1f90","dst":"shellyplus1-84cca87c1f90/events",'
        b'"method":"NotifyStatus","params":{"ts":1631266595.43,'
        b'"switch:0":{"id":0,"output":false,"source":"button"}}}'
    )
    assert outcome(decoder, topic, switch) == []  # about another component: no reading
    event = (
        b'{"src":"shellyplusi4-x","dst":"shellyplusi4-x/events","method":"NotifyEvent",'
        b'"params":{"ts":1631266595.43,"events":[{"component":"input:0","event":"single_push"}]}}'
    )
    assert outcome(decoder, topic, event) == "expected method NotifyStatus, got 'NotifyEvent'"


def test_shelly_status_topic() -> None:
    decoder = build_decoder(format="shelly", value="temperature:0.tC", timestamp="ts")
    topic = "shellyplusht-08b61fcb7f3c/status/temperature:0"
    assert outcome(decoder, topic, b'{"id":0,"tC":23.4,"tF":74.1}') == [
        Reading("dev-1", "s", 23.4, None)
    ]
    power = build_decoder(format="shelly", value="switch:0.apower")
    status = b'{"id":0,"source":"init","output":true,"apower":41.3,"voltage":229.8}'
    assert outcome(power, "shellypro1pm-1/status/switch:0", status) == [
        Reading("dev-1", "s", 41.3, None)
    ]


# --- Homie v4: one topic per property, payload is the value -----------------------------------


def test_homie_property() -> None:
    decoder = build_decoder(format="homie", value="engine/temperature")
    assert outcome(decoder, "homie/super-car/engine/temperature", b"21.5", "super-car") == [
        Reading("super-car", "s", 21.5, None)
    ]
    assert outcome(decoder, "homie/super-car/engine/temperature/$datatype", b"float") == (
        "topic 'homie/super-car/engine/temperature/$datatype' is a Homie attribute, "
        "not a property value"
    )
    assert reason(decoder, "homie/super-car/engine/temperature/set", b"1").endswith("not a value")
    assert outcome(decoder, "homie/super-car/engine/speed", b"1") == (
        "topic 'homie/super-car/engine/speed' is not Homie property 'engine/temperature'"
    )
    assert outcome(decoder, "homie/super-car/engine/temperature", b"true") == (
        "payload: expected a decimal number, got 'true'"
    )
    assert outcome(decoder, "homie/super-car/engine/temperature", b"") == (
        "empty payload, expected the property value"
    )
    anything = build_decoder(format="homie")
    assert outcome(anything, "homie/d/n/p", b"-3") == [Reading("dev-1", "s", -3.0, None)]


# --- SenML (RFC 8428 section 5.1 examples) --------------------------------------------------

RFC_SINGLE = b'[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]'
RFC_MULTIPLE = (
    b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},'
    b'{"n":"current","u":"A","v":1.2}]'
)
RFC_SERIES = (
    b'[{"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,"bu":"A","bver":5,'
    b'"n":"voltage","u":"V","v":120.1},{"n":"current","t":-5,"v":1.2},'
    b'{"n":"current","t":-4,"v":1.3},{"n":"current","t":-3,"v":1.4},'
    b'{"n":"current","t":-2,"v":1.5},{"n":"current","t":-1,"v":1.6},{"n":"current","v":1.7}]'
)


def test_senml_rfc8428_examples() -> None:
    single = build_decoder(format="senml", value="urn:dev:ow:10e2073a01080063")
    assert outcome(single, "t", RFC_SINGLE) == [Reading("dev-1", "s", 23.1, None)]
    current = build_decoder(format="senml", value="current")
    assert outcome(current, "t", RFC_MULTIPLE) == [Reading("dev-1", "s", 1.2, None)]
    series = outcome(current, "t", RFC_SERIES)
    assert series == [
        Reading("dev-1", "s", value, 1276020076001 + offset)
        for value, offset in [(1.2, -5000), (1.3, -4000), (1.4, -3000), (1.5, -2000),
                              (1.6, -1000), (1.7, 0)]
    ]
    voltage = build_decoder(format="senml", value="urn:dev:ow:10e2073a0108006:voltage")
    assert outcome(voltage, "t", RFC_SERIES) == [Reading("dev-1", "s", 120.1, 1276020076001)]


def test_senml_relative_time_base_value_and_refusals() -> None:
    decoder = build_decoder(format="senml", value="temp", now_ms=lambda: 1_700_000_000_000)
    assert outcome(decoder, "t", b'[{"n":"temp","t":-10,"v":1}]') == [
        Reading("dev-1", "s", 1.0, 1_699_999_990_000)
    ]
    assert outcome(decoder, "t", b'[{"bv":20,"n":"temp","v":1.5}]') == [
        Reading("dev-1", "s", 21.5, None)
    ]
    assert outcome(decoder, "t", b'{"n":"temp","s":4}') == [Reading("dev-1", "s", 4.0, None)]
    assert outcome(decoder, "t", b'[{"n":"temp","vb":true}]') == (
        "SenML record 1 ('temp'): expected a numeric value 'v', got 'vb'"
    )
    assert outcome(decoder, "t", b'[{"n":"hum","v":1},{"n":"x","v":2}]') == (
        "SenML pack has no record named 'temp' (it has 'hum', 'x')"
    )
    assert outcome(decoder, "t", b'[{"n":"temp","v":true}]') == (
        "SenML record 1 ('temp') 'v': expected a number, got a boolean"
    )
    assert outcome(decoder, "t", b"[]") == "empty SenML pack"
    assert outcome(decoder, "t", b'[{"bn":5}]') == (
        "SenML record 1 'bn': expected a string, got a number"
    )
    records = b"[" + b",".join(b'{"n":"temp","v":1}' for _ in range(1001)) + b"]"
    assert outcome(decoder, "t", records) == "SenML pack has 1001 records, over max_records 1000"


# --- Sparkplug B: NBIRTH, DBIRTH with aliases, DDATA by alias ---------------------------------


def _payload(seq: int, ts: int, *metrics: dict[str, object]) -> bytes:
    message = Payload(timestamp=ts, seq=seq)
    for metric in metrics:
        message.metrics.add(**metric)
    return bytes(message.SerializeToString())


def test_sparkplug_birth_then_data_by_alias() -> None:
    decoder = build_decoder(format="sparkplug_b", value="Temperature")
    nbirth = _payload(0, 1_700_000_000_000, {"name": "bdSeq", "datatype": 8, "long_value": 0})
    dbirth = _payload(
        1,
        1_700_000_000_100,
        {"name": "Temperature", "alias": 10, "datatype": 9, "float_value": 21.3},
        {"name": "Pressure", "alias": 11, "datatype": 3, "int_value": 2**32 - 7},
    )
    ddata = _payload(
        2,
        1_700_000_001_000,
        {"alias": 11, "int_value": 5},
        {"alias": 10, "float_value": 21.7, "timestamp": 1_700_000_000_900},
    )
    assert outcome(decoder, "spBv1.0/plant1/NBIRTH/edge1", nbirth) == []
    assert outcome(decoder, "spBv1.0/plant1/DBIRTH/edge1/boiler", dbirth, "boiler") == [
        Reading("boiler", "s", 21.3, 1_700_000_000_100)
    ]
    assert outcome(decoder, "spBv1.0/plant1/DDATA/edge1/boiler", ddata, "boiler") == [
        Reading("boiler", "s", 21.7, 1_700_000_000_900)
    ]
    pressure = build_decoder(format="sparkplug_b", value="Pressure")
    assert outcome(pressure, "spBv1.0/plant1/DBIRTH/edge1/boiler", dbirth) == [
        Reading("dev-1", "s", -7.0, 1_700_000_000_100)  # Int32 in two's complement
    ]


def test_sparkplug_historical_gaps_and_refusals() -> None:
    decoder = build_decoder(format="sparkplug_b", value="T")
    birth = _payload(0, 1_000_000_000_000, {"name": "T", "alias": 1, "datatype": 10,
                                            "double_value": 1.0})
    assert outcome(decoder, "spBv1.0/g/NBIRTH/n", birth) == [
        Reading("dev-1", "s", 1.0, 1_000_000_000_000)
    ]
    historical = _payload(
        5, 1_000_000_005_000,
        {"alias": 1, "double_value": 2.0, "is_historical": True, "timestamp": 999_999_000_000},
    )
    assert outcome(decoder, "spBv1.0/g/NDATA/n", historical) == [
        Reading("dev-1", "s", 2.0, 999_999_000_000, historical=True)
    ]
    assert decoder.inner.sequence_gaps == 1  # type: ignore[attr-defined]
    null = _payload(6, 1_000_000_006_000, {"alias": 1, "is_null": True})
    assert outcome(decoder, "spBv1.0/g/NDATA/n", null) == "metric 'T': is null"
    boolean = _payload(7, 1_000_000_007_000, {"name": "T", "datatype": 11, "boolean_value": True})
    assert outcome(decoder, "spBv1.0/g/NDATA/n", boolean) == (
        "metric 'T': expected a numeric value, got Boolean"
    )
    other = _payload(8, 1_000_000_008_000, {"name": "Other", "double_value": 1.0})
    assert outcome(decoder, "spBv1.0/g/NDATA/n", other) == []
    unknown = _payload(0, 1, {"alias": 99, "double_value": 1.0})
    assert outcome(decoder, "spBv1.0/g/DDATA/n/never-born", unknown) == (
        "DDATA on 'spBv1.0/g/DDATA/n/never-born' uses alias 99 but no birth was seen for it "
        "(a rebirth is needed)"
    )
    assert outcome(decoder, "spBv1.0/g/NDATA/n", b"\xff\xff\xff") == (
        "invalid Sparkplug B payload: Wire format was corrupt"
    )
    assert outcome(decoder, "spBv1.0/g/NDEATH/n", b"") == []
    assert outcome(decoder, "spBv1.0/STATE/host1", b'{"online":true}') == []
    assert outcome(decoder, "spBv1.0/g/XDATA/n", b"") == (
        "topic 'spBv1.0/g/XDATA/n': unknown Sparkplug message type 'XDATA'"
    )
    assert outcome(decoder, "site/a/b", b"") == (
        "topic 'site/a/b': expected spBv1.0/<group>/<type>/<node>"
    )
    many = _payload(9, 1, *({"name": "x", "double_value": 1.0} for _ in range(1001)))
    assert outcome(decoder, "spBv1.0/g/NDATA/n", many) == (
        "Sparkplug payload has 1001 metrics, over max_records 1000"
    )
    small = build_decoder(format="sparkplug_b", value="T", limits=DecodeLimits(max_payload_bytes=8))
    assert reason(small, "spBv1.0/g/NDATA/n", many).startswith("payload is ")


def test_sparkplug_float_keeps_its_decimal_form() -> None:
    decoder = build_decoder(format="sparkplug_b", value="T")
    data = _payload(0, 1, {"name": "T", "datatype": 9, "float_value": 21.3})
    (reading,) = decoder("spBv1.0/g/NDATA/n", data, "d", "s")
    assert reading.value == 21.3
