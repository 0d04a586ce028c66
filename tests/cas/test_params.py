"""Request parameters: repeated, oversized, missing, flags, formats."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from sso.cas.errors import CasError, Code
from sso.cas.params import (
    LoginRequest,
    ValidateRequest,
    parse_login,
    parse_proxy,
    parse_validate,
    requested_format,
    single,
)


def test_single() -> None:
    assert single({"a": ["x"]}, "a") == "x"
    assert single({"a": [""]}, "a") == ""
    assert single({}, "a") is None
    assert single({"a": "x"}, "a") == "x"  # a plain dict of strings works too
    assert single(MultiDict([("a", "x")]), "a") == "x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"a": ["x", "y"]}, "more than once"),
        (MultiDict([("a", "x"), ("a", "x")]), "more than once"),
        ({"a": ["x" * 2049]}, "longer than 2048"),
        ({}, "'a' is required"),
        ({"a": [""]}, "'a' is required"),
    ],
)
def test_single_refuses(args, message: str) -> None:
    with pytest.raises(CasError, match=message) as info:
        single(args, "a", required=True)
    assert info.value.code is Code.INVALID_REQUEST


def test_login_defaults() -> None:
    assert parse_login({}) == LoginRequest(service=None, renew=False, gateway=False, method="GET", warn=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("", True), ("1", True), ("yes", True), ("TRUE", True), ("false", False), ("0", False)],
)
def test_flags(value: str, expected: bool) -> None:
    request = parse_login({"renew": [value], "gateway": [value], "warn": [value]})
    assert (request.renew, request.gateway, request.warn) == (expected, expected, expected)


@pytest.mark.parametrize(
    ("value", "method"), [("POST", "POST"), ("post", "POST"), ("GET", "GET"), ("", "GET")]
)
def test_login_method(value: str, method: str) -> None:
    assert parse_login({"method": [value]}).method == method


@pytest.mark.parametrize(
    "args",
    [
        {"method": ["HEADER"]},
        {"method": ["PUT"]},
        {"service": ["https://a/", "https://b/"]},
        {"service": ["https://a/" + "x" * 3000]},
        {"renew": ["true", "true"]},
        {"gateway": ["x" * 100]},
    ],
)
def test_login_refuses(args) -> None:
    with pytest.raises(CasError) as info:
        parse_login(args)
    assert info.value.code is Code.INVALID_REQUEST


def test_login_empty_service_is_none_and_url_ignored() -> None:
    assert parse_login({"service": [""], "url": ["https://evil/"]}).service is None


def test_validate() -> None:
    request = parse_validate(
        {"ticket": ["ST-abc"], "service": ["https://s/"], "pgtUrl": ["https://p/cb"], "renew": ["true"]}
    )
    assert request == ValidateRequest("ST-abc", "https://s/", True, "https://p/cb", "XML")
    assert parse_validate({"ticket": ["ST-a"], "service": ["s"], "format": ["json"]}).format == "JSON"
    assert parse_validate({"ticket": ["ST-a"], "service": ["s"], "pgtUrl": [""]}).pgt_url is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"service": ["https://s/"]}, "'ticket' is required"),
        ({"ticket": ["ST-a"]}, "'service' is required"),
        ({"ticket": [""], "service": ["https://s/"]}, "'ticket' is required"),
        ({"ticket": ["ST-a", "ST-b"], "service": ["https://s/"]}, "more than once"),
        ({"ticket": ["ST-" + "a" * 300], "service": ["https://s/"]}, "longer than 256"),
        ({"ticket": ["ST-a"], "service": ["https://s/"], "format": ["YAML"]}, "XML or JSON"),
        ({"ticket": ["ST-a"], "service": ["https://s/"], "format": ["JSON", "XML"]}, "more than once"),
        ({"ticket": ["ST-a"], "service": ["https://s/"], "pgtUrl": ["a", "b"]}, "more than once"),
    ],
)
def test_validate_refuses(args, message: str) -> None:
    with pytest.raises(CasError, match=message) as info:
        parse_validate(args)
    assert info.value.code is Code.INVALID_REQUEST


@pytest.mark.parametrize(
    ("args", "fmt"),
    [
        ({}, "XML"),
        ({"format": ["json"]}, "JSON"),
        ({"format": ["YAML"]}, "XML"),
        ({"format": ["JSON", "JSON"]}, "XML"),
    ],
)
def test_requested_format(args, fmt: str) -> None:
    assert requested_format(args) == fmt


def test_proxy() -> None:
    request = parse_proxy({"pgt": ["PGT-a"], "targetService": ["https://t/"], "format": ["JSON"]})
    assert (request.pgt, request.target_service, request.format) == ("PGT-a", "https://t/", "JSON")


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"pgt": ["PGT-a"]},
        {"targetService": ["https://t/"]},
        {"pgt": ["PGT-a", "PGT-b"], "targetService": ["t"]},
    ],
)
def test_proxy_refuses(args) -> None:
    with pytest.raises(CasError) as info:
        parse_proxy(args)
    assert info.value.code is Code.INVALID_REQUEST
