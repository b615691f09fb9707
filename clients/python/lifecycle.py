"""The admin lifecycle of one API key, then of a scoped admin credential (SPEC B9), through a
client generated from the served /openapi.json.

openapi-python-client generates the package ``iam_tokens_client``; no request here is written by
hand. Run by scripts/clients.sh, which checks this file with ``mypy --strict`` first:

    PYTHONPATH=clients/python/generated/iam-tokens-client \
    IAM_URL=http://127.0.0.1:8080 IAM_ADMIN_SECRET=... python clients/python/lifecycle.py

Prints each step; exits 1 on the first answer that differs from what README.md promises.
"""

from __future__ import annotations

import json
import os
import datetime
import random
import sys
import time
from typing import Any, NoReturn, TypeVar

import httpx
from iam_tokens_client import AuthenticatedClient
from iam_tokens_client.api.admin import (
    create_credential,
    create_role,
    create_token,
    get_token,
    list_audit_events,
    list_user_tokens,
    revoke_credential,
    revoke_token,
    change_token_credits,
    verify_key_detailed,
)
from iam_tokens_client.models import (
    ListUserTokensMeta,
    ListUserTokensStatus,
    AdminVerifyFound,
    AdminVerifyFoundCode,
    AdminVerifyNotFound,
    AdminVerifyNotFoundCode,
    AuditPageView,
    CreateCredentialRequest,
    CreatedView,
    CreateRoleRequest,
    CreateTokenRequest,
    CreditsInput,
    CreditsPatch,
    CredentialCreatedView,
    CredentialView,
    EventView,
    ListAuditEventsKind,
    Metadata,
    Privilege,
    Problem,
    RateLimitInput,
    RevokedView,
    RoleView,
    ScopeView,
    TokenCreditsView,
    TokenPage,
    TokenView,
    VerifyRequest,
)
from iam_tokens_client.types import UNSET, Response, Unset

T = TypeVar("T")
R = TypeVar("R")


class Mismatch(Exception):
    pass


def check(ok: bool, what: str, seen: object = None) -> None:
    if not ok:
        raise Mismatch(what if seen is None else f"{what}: got {seen!r}")


def step(name: str, detail: object) -> None:
    print(f"[py] {name:<22} {detail}", flush=True)


def fail(message: str) -> NoReturn:
    print(f"[py] MISMATCH: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def expect(label: str, resp: Response[Problem | T], status: int, kind: type[T]) -> T:
    """The parsed body of an answer with this status and model, else a mismatch."""
    check(resp.status_code == status, f"{label}: expected HTTP {status}", (resp.status_code, resp.content[:300]))
    parsed = resp.parsed
    check(isinstance(parsed, kind), f"{label}: body parsed as {kind.__name__}", parsed)
    assert isinstance(parsed, kind)
    return parsed


def refused(label: str, resp: Response[R], status: int, code: str) -> Problem:
    """The typed Problem of an error answer with this status and code, else a mismatch."""
    problem = resp.parsed
    check(
        resp.status_code == status and isinstance(problem, Problem),
        f"{label}: HTTP {status} parsed as Problem",
        (resp.status_code, resp.content[:300]),
    )
    assert isinstance(problem, Problem)
    check(
        resp.headers.get("content-type", "").startswith("application/problem+json"),
        f"{label}: problem+json content type",
        resp.headers.get("content-type"),
    )
    check(problem.status == status and problem.code == code, f"{label}: problem status and code", problem.to_dict())
    check(problem.type_ == f"urn:iam-tokens:problem:{code}", f"{label}: problem type", problem.type_)
    return problem


def metadata(**values: str) -> Metadata:
    meta = Metadata()
    for key, value in values.items():
        meta[key] = value
    return meta


def verify(
    client: AuthenticatedClient, request: VerifyRequest
) -> tuple[AdminVerifyFound | AdminVerifyNotFound, dict[str, Any]]:
    """An admin verification's answer as the generated model of AdminVerifyView (a oneOf of
    AdminVerifyNotFound and AdminVerifyFound), with the body as sent, to tell what the model kept."""
    resp = verify_key_detailed.sync_detailed(client=client, body=request)
    check(resp.status_code == 200, "admin verify: expected HTTP 200", (resp.status_code, resp.content[:300]))
    parsed = resp.parsed
    check(
        isinstance(parsed, (AdminVerifyFound, AdminVerifyNotFound)),
        "admin verify: 200 parsed as AdminVerifyFound or AdminVerifyNotFound",
        parsed,
    )
    assert isinstance(parsed, (AdminVerifyFound, AdminVerifyNotFound))
    body: dict[str, Any] = json.loads(resp.content)
    return parsed, body


def main() -> None:
    base_url = os.environ.get("IAM_URL")
    secret = os.environ.get("IAM_ADMIN_SECRET")
    if not base_url or not secret:
        print("IAM_URL and IAM_ADMIN_SECRET must be set", file=sys.stderr)
        sys.exit(2)
    run = f"{int(time.time() * 1000):x}{random.randrange(1 << 20):x}"
    user_id = 600_000 + random.randrange(100_000)
    role_name = f"py-plan-{run}"
    # Every request's URL, as httpx sent it: the list step checks how the metadata filter went out.
    sent: list[httpx.URL] = []

    def record(request: httpx.Request) -> None:
        sent.append(request.url)

    client = AuthenticatedClient(
        base_url=base_url,
        token=secret,
        timeout=httpx.Timeout(30.0),
        httpx_args={"event_hooks": {"request": [record]}},
    )

    # 1. A role.
    role = expect(
        "create role",
        create_role.sync_detailed(
            client=client,
            body=CreateRoleRequest(
                name=role_name, description="lifecycle plan", permissions=["projects.*", "billing.read"]
            ),
        ),
        201,
        RoleView,
    )
    check(role.name == role_name, "role name", role.name)
    check(role.permissions == ["billing.read", "projects.*"], "role permissions (sorted)", role.permissions)
    check(role.tokens == 0, "a new role is held by no token", role.tokens)
    step("create role", {"name": role.name, "permissions": role.permissions})

    # 2. A token holding it, with metadata, a limit and credits.
    created = expect(
        "create token",
        create_token.sync_detailed(
            client=client,
            body=CreateTokenRequest(
                user_id=user_id,
                name=f"py lifecycle {run}",
                privilege=Privilege.FULL,
                roles=[role_name],
                metadata=metadata(plan="pro"),
                ratelimits=[RateLimitInput(name="requests", limit=100, duration=60_000)],
                credits_=CreditsInput(remaining=50),
            ),
        ),
        201,
        CreatedView,
    )
    token = created.token
    check(bool(created.raw_api_key), "raw key shown once", created.raw_api_key)
    check(token.user_id == user_id, "owner", token.user_id)
    check(token.valid, "new token valid", token.valid)
    check(token.roles == [role_name], "roles", token.roles)
    check(token.metadata.additional_properties == {"plan": "pro"}, "metadata", token.metadata.to_dict())
    credits = token.credits_
    check(not isinstance(credits, Unset) and credits is not None and credits.remaining == 50, "credits", credits)
    step("create token", {"id": token.id, "prefix": token.prefix, "credits": 50})

    # A second key of the same owner on another plan: the metadata filter must leave it out.
    other = expect(
        "create 2nd token",
        create_token.sync_detailed(
            client=client,
            body=CreateTokenRequest(
                user_id=user_id,
                name=f"py lifecycle other {run}",
                privilege=Privilege.FULL,
                metadata=metadata(plan="free"),
            ),
        ),
        201,
        CreatedView,
    )
    step("create 2nd token", {"id": other.token.id, "metadata": other.token.metadata.to_dict()})

    # 3. Admin verify: a query the role satisfies, at cost 2.
    verified, _ = verify(
        client, VerifyRequest(key=created.raw_api_key, permissions="projects.write AND billing.read", cost=2)
    )
    check(isinstance(verified, AdminVerifyFound), "a found key's detail (AdminVerifyFound)", verified)
    assert isinstance(verified, AdminVerifyFound)
    check(verified.valid and verified.code == AdminVerifyFoundCode.VALID, "verify VALID", (verified.valid, verified.code))
    check(verified.id == token.id, "verified token id", verified.id)
    credits_left = verified.credits_
    check(not isinstance(credits_left, Unset) and credits_left.token == 48, "credits left after cost 2", credits_left)
    ratelimits = [] if isinstance(verified.ratelimits, Unset) else verified.ratelimits
    requests = [limit for limit in ratelimits if limit.name == "requests"]
    check(
        len(requests) == 1 and requests[0].remaining == 98 and requests[0].scope == ScopeView.TOKEN,
        "requests limit after cost 2",
        ratelimits,
    )
    check(verified.metadata.to_dict() == {"plan": "pro"}, "metadata at verification", verified.metadata.to_dict())
    step("admin verify", {"code": verified.code.value, "creditsLeft": 48, "requestsLeft": requests[0].remaining})

    # 4. Read it back.
    read = expect("read token", get_token.sync_detailed(id=token.id, client=client), 200, TokenView)
    check(read.id == token.id and read.valid, "read token", (read.id, read.valid))
    read_credits = read.credits_
    check(
        not isinstance(read_credits, Unset) and read_credits is not None and read_credits.remaining == 48,
        "credits read after verify",
        read_credits,
    )
    check(
        read.effective_permissions == ["billing.read", "projects.*"],
        "effective permissions",
        read.effective_permissions,
    )
    limits = read.ratelimits
    check(
        not isinstance(limits, Unset)
        and limits is not None
        and len(limits) == 1
        and limits[0].name == "requests"
        and limits[0].limit == 100
        and limits[0].auto_apply,
        "configured limit",
        limits,
    )
    step("read token", {"id": read.id, "credits": 48, "roles": read.roles})

    # 5. Top up the credits.
    topped = expect(
        "patch credits",
        change_token_credits.sync_detailed(id=token.id, client=client, body=CreditsPatch(increment=5)),
        200,
        TokenCreditsView,
    )
    now = topped.credits_
    check(not isinstance(now, Unset) and now is not None and now.remaining == 53, "credits after +5", now)
    step("patch credits", {"remaining": 53})

    # 6. The owner's tokens with metadata plan=pro: the declared deepObject parameter `meta`, sent
    # as meta[plan]=pro (scripts/clients.sh makes the generator honour `style: deepObject`).
    page = expect(
        "list tokens",
        list_user_tokens.sync_detailed(
            user_id=user_id,
            client=client,
            status=ListUserTokensStatus.VALID,
            limit=50,
            meta=ListUserTokensMeta.from_dict({"plan": "pro"}),
        ),
        200,
        TokenPage,
    )
    query = sent[-1].params
    check(
        sorted(query.multi_items()) == [("limit", "50"), ("meta[plan]", "pro"), ("status", "valid")],
        "the filter sent as meta[plan]=pro",
        str(sent[-1]),
    )
    ids = [t.id for t in page.tokens]
    check(ids == [token.id], "only the pro token listed", [(t.id, t.metadata.to_dict()) for t in page.tokens])
    check(page.next_cursor is None or isinstance(page.next_cursor, Unset), "one page", page.next_cursor)
    step("list meta[plan]=pro", {"query": sent[-1].query.decode(), "ids": ids})

    # 7. Revoke (admin route), then the key verifies as NOT_FOUND.
    revoked = expect("revoke", revoke_token.sync_detailed(id=token.id, client=client), 200, RevokedView)
    check(revoked.revoked and not revoked.token.valid, "revoked", (revoked.revoked, revoked.token.valid))
    step("revoke", {"revoked": revoked.revoked, "valid": revoked.token.valid})

    after, after_body = verify(client, VerifyRequest(key=created.raw_api_key))
    check(isinstance(after, AdminVerifyNotFound), "revoked key: AdminVerifyNotFound", after)
    assert isinstance(after, AdminVerifyNotFound)
    check(
        not after.valid and after.code == AdminVerifyNotFoundCode.NOT_FOUND,
        "revoked key NOT_FOUND",
        (after.valid, after.code),
    )
    check(after_body == after.to_dict(), "NOT_FOUND carries nothing else", sorted(after_body))
    step("verify revoked", {"valid": after.valid, "code": after.code.value})

    # 8. An invalid role name: a typed 422 problem.
    bad = create_role.sync_detailed(
        client=client, body=CreateRoleRequest(name="not a role name!", permissions=[])
    )
    problem = bad.parsed
    check(
        bad.status_code == 422 and isinstance(problem, Problem), "invalid role: 422 Problem", (bad.status_code, problem)
    )
    assert isinstance(problem, Problem)
    check(
        bad.headers.get("content-type", "").startswith("application/problem+json"),
        "problem+json content type",
        bad.headers.get("content-type"),
    )
    check(
        problem.status == 422 and problem.code == "invalid_role" and problem.field == "name",
        "problem code and field",
        problem.to_dict(),
    )
    check(problem.type_ == "urn:iam-tokens:problem:invalid_role", "problem type", problem.type_)
    step("invalid role -> 422", {"code": problem.code, "field": problem.field, "detail": problem.detail})

    # 9. A scoped credential (SPEC B9), created with the configured admin secret: a verifier.
    cred = expect(
        "create credential",
        create_credential.sync_detailed(
            client=client, body=CreateCredentialRequest(name=f"py-verifier-{run}", preset="verifier")
        ),
        201,
        CredentialCreatedView,
    )
    check(cred.effective_scopes == ["tokens.verify"], "verifier effective scopes", cred.effective_scopes)
    check(cred.active and cred.secret.startswith("iam_admin_"), "an active credential and its secret", cred.active)
    step("create credential", {"id": cred.id, "effectiveScopes": cred.effective_scopes})
    verifier = AuthenticatedClient(base_url=base_url, token=cred.secret, timeout=httpx.Timeout(30.0))

    # 10. The verifier verifies the 2nd token (still valid: only the first was revoked).
    by_verifier, _ = verify(verifier, VerifyRequest(key=other.raw_api_key))
    check(isinstance(by_verifier, AdminVerifyFound), "verifier: a found key's detail (AdminVerifyFound)", by_verifier)
    assert isinstance(by_verifier, AdminVerifyFound)
    check(
        by_verifier.valid and by_verifier.code == AdminVerifyFoundCode.VALID,
        "verifier: verify VALID",
        (by_verifier.valid, by_verifier.code),
    )
    check(by_verifier.id == other.token.id, "verifier: verified token id", by_verifier.id)
    step("verifier verify", {"id": by_verifier.id, "code": by_verifier.code.value})

    # 11. It may not create a token: a typed 403 naming the scope it lacks.
    forbidden = refused(
        "verifier create token",
        create_token.sync_detailed(
            client=verifier,
            body=CreateTokenRequest(user_id=user_id, name=f"py verifier {run}", privilege=Privilege.FULL),
        ),
        403,
        "forbidden",
    )
    check(forbidden.missing_scope == "tokens.create", "missingScope", forbidden.to_dict())
    step("verifier create -> 403", {"code": forbidden.code, "missingScope": forbidden.missing_scope})

    # 12. The audit log: nothing done by the verifier (it changed nothing); its creation, by the
    # configured admin (actor type config).
    actor = f"credential:{cred.id}"
    acted = expect(
        "audit by verifier",
        list_audit_events.sync_detailed(client=client, actor=actor, limit=200),
        200,
        AuditPageView,
    )
    kinds = [event.kind for event in acted.events]
    check(kinds == [], f"no event with actor {actor}", kinds)
    step("audit by verifier", {"actor": actor, "kinds": kinds})

    created_event: EventView | None = None
    cursor: int | Unset = UNSET
    while created_event is None:
        page_of_kind = expect(
            "audit credential_created",
            list_audit_events.sync_detailed(
                client=client, kind=ListAuditEventsKind.CREDENTIAL_CREATED, limit=200, cursor=cursor
            ),
            200,
            AuditPageView,
        )
        check(
            all(event.kind == "credential_created" for event in page_of_kind.events),
            "only credential_created events",
            [event.kind for event in page_of_kind.events],
        )
        created_event = next(
            (event for event in page_of_kind.events if event.detail.additional_properties.get("credentialId") == cred.id),
            None,
        )
        next_cursor = page_of_kind.next_cursor
        if next_cursor is None or isinstance(next_cursor, Unset):
            break
        cursor = next_cursor
    check(created_event is not None, f"a credential_created event with detail.credentialId {cred.id}")
    assert created_event is not None
    check(created_event.actor.type_ == "config", "created by the configured admin", created_event.actor.to_dict())
    step(
        "audit cred created",
        {"eventId": created_event.id, "actor": created_event.actor.to_dict(), "detail": created_event.detail.to_dict()},
    )

    # 13. Revoke it: it stays readable, revoked; the verifier's secret is refused at once (401).
    gone = expect(
        "revoke credential", revoke_credential.sync_detailed(id=cred.id, client=client), 200, CredentialView
    )
    check(gone.id == cred.id, "revoked credential id", gone.id)
    check(
        isinstance(gone.revoked_at, datetime.datetime) and not gone.active,
        "revokedAt set, not active",
        (gone.revoked_at, gone.active),
    )
    assert isinstance(gone.revoked_at, datetime.datetime)
    step("revoke credential", {"id": gone.id, "revokedAt": gone.revoked_at.isoformat(), "active": gone.active})

    unauthorized = refused(
        "revoked verifier",
        verify_key_detailed.sync_detailed(client=verifier, body=VerifyRequest(key=other.raw_api_key)),
        401,
        "unauthorized",
    )
    step("revoked cred -> 401", {"code": unauthorized.code, "detail": unauthorized.detail})
    verifier.get_httpx_client().close()
    client.get_httpx_client().close()


if __name__ == "__main__":
    try:
        main()
    except (Mismatch, httpx.HTTPError, KeyError, ValueError) as error:
        fail(f"{type(error).__name__}: {error}")
    print("[py] lifecycle OK", flush=True)
