"""Variables that look like ours: a misspelt setting is named with the closest real one, an
instance's variable for an undeclared instance is named; ours and Clerk's SDKs' are not."""

from __future__ import annotations

import pytest

from service.config.lookalikes import lookalike_variables


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"CLERK_WEBHOOK_SIGNING_SECRT": "whsec_x"},
            [("CLERK_WEBHOOK_SIGNING_SECRT", "did you mean CLERK_WEBHOOK_SIGNING_SECRET?")],
        ),
        (
            {"CLERK_INSTANCES": "prod", "CLERK_PROD_SECRT_KEY": "sk_x"},
            [("CLERK_PROD_SECRT_KEY", "did you mean CLERK_PROD_SECRET_KEY?")],
        ),
        (
            {"CLERK_INSTANCES": "prod", "CLERK_PRDO_SECRET_KEY": "sk_x"},
            [("CLERK_PRDO_SECRET_KEY", "did you mean CLERK_PROD_SECRET_KEY?")],
        ),
        (
            {"CLERK_STAGING_SECRET_KEY": "sk_x"},
            [("CLERK_STAGING_SECRET_KEY", "CLERK_INSTANCES does not name an instance 'staging'")],
        ),
        (
            {"reconcile_cron_hour": "3"},
            [("RECONCILE_CRON_HOUR", "did you mean RECONCILE_CRON_HOURS?")],
        ),
        ({"WORKER_CONCURENCY": "3"}, [("WORKER_CONCURENCY", "did you mean WORKER_CONCURRENCY?")]),
        # Ours, of a named instance, of Clerk's SDKs, or of other tools: no warning.
        (
            {
                "CLERK_INSTANCES": "prod",
                "CLERK_PROD_SECRET_KEY": "sk_x",
                "CLERK_PROD_WEBHOOK_SIGNING_SECRET_PREVIOUS": "whsec_x",
                "CLERK_WEBHOOK_SIGNING_SECRET": "whsec_x",
                "clerk_secret_key": "sk_x",
                "CLERK_API_URL": "https://api.clerk.com/v1",
                "CLERK_PUBLISHABLE_KEY": "pk_x",
                "CLERK_JWT_KEY": "x",
                "CLERK_MACHINE_SECRET_KEY": "x",
                "CLERK_SIGN_IN_URL": "/sign-in",
                "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY": "pk_x",
                "VITE_CLERK_PUBLISHABLE_KEY": "pk_x",
                "DATABASE_URL_UNPOOLED": "x",
                "REDIS_HOST": "x",
                "REDIS_PORT": "6379",
                "DB_PASSWORD": "x",
                "LOG_FILE": "x",
                "HOSTNAME": "x",
                "PORTS": "x",
            },
            [],
        ),
    ],
)
def test_a_variable_that_looks_like_ours_is_named_with_the_closest_real_one(
    environ: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert lookalike_variables(environ) == expected
