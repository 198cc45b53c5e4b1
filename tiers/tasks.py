from celery import shared_task

from tiers import services


@shared_task(acks_late=True)
def tier_simulation_task(*, simulation_id: int, **kwargs: object) -> dict[str, object]:
    """The preview's dry run over every member: too long at a million members for the browser to wait on."""
    simulation = services.tier_simulation_run(simulation_id=simulation_id)
    return {"status": simulation.status, "members": simulation.members}
