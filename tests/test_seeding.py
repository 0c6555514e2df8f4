"""Every random stream of a cell has its own id: two streams sharing one would draw the same numbers."""


def test_the_random_streams_of_a_cell_are_distinct():
    from benchmark.conditions import TASK_STREAM
    from benchmark.metrics import evaluate
    from benchmark.training import trainer

    streams = {
        "init": trainer.INIT_STREAM,
        "order": trainer.ORDER_STREAM,
        "noise": trainer.NOISE_STREAM,
        "binarize": trainer.BINARIZE_STREAM,
        "validation": trainer.VALIDATION_STREAM,
        "task": TASK_STREAM,
        "sample": evaluate.SAMPLE_STREAM,
        "likelihood": evaluate.LIKELIHOOD_STREAM,
        "subset": evaluate.SUBSET_STREAM,
        "completion": evaluate.COMPLETION_STREAM,
    }
    assert len(set(streams.values())) == len(streams), streams
