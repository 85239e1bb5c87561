async def test_api_docs_are_served_without_a_network(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text
    js = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert len(js.content) > 100_000
    spec = (await client.get("/openapi.json")).json()
    assert "/api/chat" in spec["paths"]
    assert "/api/sessions/{session_id}" in spec["paths"]
    assert (await client.get("/redoc")).status_code == 200
