from django import forms


class AcceptMatchingForm(forms.Form):
    """"Accept every suggestion with confidence ≥ X matching this filter": the list's filters come back as
    they were applied, and are checked again before anything is built."""

    min_confidence = forms.IntegerField(label="Confidence at least", min_value=0, max_value=100,
                                        error_messages={"required": "Say the least confidence to accept."})
    filter_query = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "accept-%s")
        super().__init__(*args, **kwargs)
        self.fields["min_confidence"].widget.attrs.update({"aria-describedby": "accept-help", "inputmode": "numeric"})
