"""The card `AesformerTrainer` writes (and `push_to_hub` uploads): with and without evaluation metrics."""

from huggingface_hub import ModelCard

from aesformer_hf.training import ADAPTATION, AesformerTrainer

from .conftest import make_args, make_model


def test_card_without_evaluation_is_the_trainers_own(tmp_path, aesthetics, training_processor):
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, stage=ADAPTATION, max_steps=1),
        processing_class=training_processor,
        train_dataset=aesthetics["train"],
    )
    trainer.train()
    trainer.create_model_card(license="apache-2.0", finetuned_from="someone/aesformer-t", tags=["mine"])
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.license == "apache-2.0" and "mine" in card.data.tags
    assert "Training hyperparameters" in card.text


def test_push_to_hub_arguments_and_trainer_sections_reach_the_aesformer_card(
    tmp_path, aesthetics, training_processor
):
    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path, stage=ADAPTATION, max_steps=1),
        processing_class=training_processor,
        train_dataset=aesthetics["train"],
        eval_dataset=aesthetics["test"],
    )
    trainer.train()
    metrics = trainer.evaluate()
    # What Trainer.push_to_hub passes on to create_model_card.
    trainer.create_model_card(
        language="en",
        license="apache-2.0",
        tags=["mine"],
        model_name="my-aesformer",
        finetuned_from="someone/aesformer-t",
        dataset="AVA",
        dataset_tags="someone/ava",
    )
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    assert data.license == "apache-2.0" and data.base_model == "someone/aesformer-t"
    assert "mine" in data.tags and "aesformer" in data.tags and data.datasets == ["someone/ava"]
    assert data.language == "en" and data.model_name == "my-aesformer"
    measured = {r.metric_type: r.metric_value for r in data.eval_results}
    assert measured["emd"] == round(metrics["eval_emd"], 6)  # eval_emd reaches model-index
    assert measured["spearmanr"] == round(metrics["eval_srcc"], 6)
    for section in ("## Training hyperparameters", "## Framework versions", "learning_rate: 0.001"):
        assert section in card.text, section


def test_saved_folder_loads_as_remote_code_with_the_pipeline(tmp_path, training_processor):
    """What the Trainer saves (and so `push_to_hub` uploads) holds the pipeline and the base model's AutoModel."""
    import json

    trainer = AesformerTrainer(
        model=make_model(),
        args=make_args(tmp_path / "run", stage=ADAPTATION),
        processing_class=training_processor,
    )
    trainer.save_model(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_aesformer.AesformerModel"
    assert (
        config["custom_pipelines"]["image-aesthetics"]["impl"] == "pipeline_aesformer.ImageAestheticsPipeline"
    )
    assert (tmp_path / "model" / "pipeline_aesformer.py").is_file()
    from aesformer_hf.hub import remote_code_problems

    assert remote_code_problems(tmp_path / "model") == []
