"""Terminals authenticate with their own key, as a bearer token or in X-Api-Key; anything else is a 401 problem.
The schema and the docs need no key, and the docs use the bundled static files."""

from django.test import Client

from members.models import Store, Terminal
from members.terminals import terminal_deactivate, terminal_rotate
from tests.api.conftest import Api, problem_of


class TestAuthentication:
    def test_a_request_without_a_key_is_refused_as_a_problem(self, till):
        response = Api(None).get("/program")

        assert response.status_code == 401
        assert problem_of(response)["code"] == "UNAUTHENTICATED"
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_a_wrong_key_is_refused(self, till):
        _terminal, key = till

        response = Api(key[:-1] + ("A" if key[-1] != "A" else "B")).get("/program")

        assert response.status_code == 401 and problem_of(response)["code"] == "UNAUTHENTICATED"

    def test_a_deactivated_terminal_is_refused(self, till):
        terminal, key = till
        terminal_deactivate(terminal=terminal, by=None)

        response = Api(key).get("/program")

        assert response.status_code == 401

    def test_a_terminal_of_a_closed_store_is_refused(self, till, store: Store):
        Store.objects.filter(pk=store.pk).update(is_active=False)

        response = Api(till[1]).get("/program")

        assert response.status_code == 401

    def test_the_old_key_stops_working_when_the_key_is_replaced(self, till):
        terminal, old = till
        new = terminal_rotate(terminal=terminal, by=None)

        assert Api(old).get("/program").status_code == 401
        assert Api(new).get("/program").status_code == 200

    def test_the_key_also_works_in_x_api_key(self, till):
        response = Api(None).get("/program", headers={"X-Api-Key": till[1]})

        assert response.status_code == 200

    def test_a_post_needs_no_csrf_token(self, till, member):
        client = Client(enforce_csrf_checks=True)

        response = client.post(
            "/api/v1/quotes",
            {"member_no": member.member_no, "amount": {"amount": 100, "currency": "CNY"}},
            content_type="application/json",
            headers={"Authorization": f"Bearer {till[1]}"},
        )

        assert response.status_code == 200


class TestSchemaAndDocs:
    def test_the_schema_is_served_without_a_key_and_documents_problems(self, db):
        schema = Client().get("/api/v1/openapi.json").json()

        refused = schema["paths"]["/api/v1/purchases"]["post"]["responses"]["422"]
        assert schema["info"]["title"] == "Huiyuan POS API"
        assert list(refused["content"]) == ["application/problem+json"]
        assert {s for s in schema["components"]["securitySchemes"]} == {"BearerKey", "HeaderKey"}

    def test_the_docs_use_the_bundled_swagger_files_not_a_cdn(self, db):
        response = Client().get("/api/v1/docs")

        html = response.content.decode()
        assert response.status_code == 200
        assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html.lower()

    def test_the_terminal_is_marked_as_used(self, till):
        terminal, key = till

        Api(key).get("/program")

        terminal.refresh_from_db()
        assert Terminal.objects.get(pk=terminal.pk).last_used_at is not None
