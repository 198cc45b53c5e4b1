from django.urls import reverse


def test_the_language_switch_persists_across_requests(owner_client):
    response = owner_client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})

    assert response.status_code == 302
    assert 'lang="zh-hans"' in owner_client.get("/").content.decode()

    owner_client.post(reverse("set_language"), {"language": "en", "next": "/"})

    assert 'lang="en"' in owner_client.get("/").content.decode()
